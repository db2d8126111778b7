import { parseIp } from "../core/address.ts";

/** A host that is an IP literal, without IPv6 brackets; null for a name. */
export function ipLiteral(host: string): string | null {
  return parseIp(host) ? host.replace(/^\[(.*)\]$/, "$1") : null;
}

/** A host as an IP literal: epoll threads bind and dial addresses, not names. */
export async function resolveIp(host: string): Promise<string> {
  const literal = ipLiteral(host);
  if (literal !== null) return literal;
  // node:dns is loaded only for a name: most deployments give addresses.
  const { lookup } = await import("node:dns/promises");
  return (await lookup(host)).address;
}
