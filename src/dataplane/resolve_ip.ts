import { parseIp } from "../core/address.ts";

/** A host as an IP literal: epoll threads bind and dial addresses, not names. */
export async function resolveIp(host: string): Promise<string> {
  if (parseIp(host)) return host.replace(/^\[(.*)\]$/, "$1");
  // node:dns is loaded only for a name: most deployments give addresses.
  const { lookup } = await import("node:dns/promises");
  return (await lookup(host)).address;
}
