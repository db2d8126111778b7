/** A TCP or UDP endpoint as the operator wrote it, split into host and port. */
export interface HostPort {
  host: string;
  port: number;
}

const BRACKETED = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/;
const PLAIN = /^([^:\s\[\]]*):(\d+)$/;

/**
 * Parses `HOST:PORT`, `[v6]:PORT` or `:PORT` (all interfaces). An empty host becomes
 * `defaultHost`. Returns undefined for anything else so the caller can name the field.
 */
export function parseHostPort(text: string, defaultHost = "0.0.0.0"): HostPort | undefined {
  const match = BRACKETED.exec(text.trim()) ?? PLAIN.exec(text.trim());
  if (!match) return undefined;
  const port = Number(match[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) return undefined;
  return { host: match[1] === "" ? defaultHost : match[1], port };
}

/** Formats a HostPort back into `HOST:PORT`, bracketing IPv6 literals. */
export function formatHostPort(address: HostPort): string {
  return address.host.includes(":")
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}
