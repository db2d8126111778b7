/** A TCP or UDP endpoint as the operator wrote it, split into host and port. */
export interface HostPort {
  host: string;
  port: number;
}

// The shape of an endpoint; the port part is anything without a colon, checked afterwards so a
// bad port can be named (portProblem).
const BRACKETED = /^\[([0-9a-fA-F:.]+)\]:([^:]*)$/;
const PLAIN = /^([^:\s\[\]]*):([^:]*)$/;

/** `[host, port text]` of something shaped `HOST:PORT`, `[v6]:PORT` or `:PORT`; else null. */
function splitHostPort(text: string): [string, string] | null {
  const match = BRACKETED.exec(text.trim()) ?? PLAIN.exec(text.trim());
  return match ? [match[1], match[2]] : null;
}

/**
 * Parses `HOST:PORT`, `[v6]:PORT` or `:PORT` (all interfaces). An empty host becomes
 * `defaultHost`. Returns undefined for anything else so the caller can name the field.
 */
export function parseHostPort(text: string, defaultHost = "0.0.0.0"): HostPort | undefined {
  const split = splitHostPort(text);
  if (!split || badPort(split[1])) return undefined;
  return { host: split[0] === "" ? defaultHost : split[0], port: Number(split[1]) };
}

/**
 * What is wrong with the port of something shaped `HOST:PORT` (missing, not a number, above
 * 65535); undefined when the port is fine or the shape is not that of an endpoint.
 */
export function portProblem(text: string): string | undefined {
  const split = splitHostPort(text);
  return split ? badPort(split[1]) : undefined;
}

function badPort(port: string): string | undefined {
  if (port === "") return "the port is missing";
  if (!/^\d+$/.test(port)) return `port "${port}" is not a number`;
  if (Number(port) > 65535) return `port ${port} is above 65535`;
  return undefined;
}

/** Formats a HostPort back into `HOST:PORT`, bracketing IPv6 literals. */
export function formatHostPort(address: HostPort): string {
  return address.host.includes(":")
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

/** Parses an IPv4 or IPv6 literal into its bytes (4 or 16); null when it is neither. */
export function parseIp(text: string): Uint8Array | null {
  const v4 = parseIpv4(text);
  if (v4) return v4;
  const host = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (!host.includes(":") || host.includes("%")) return null;
  const halves = host.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i];
      if (i === pieces.length - 1 && piece.includes(".")) {
        const tail = parseIpv4(piece);
        if (!tail) return null;
        out.push((tail[0] << 8) | tail[1], (tail[2] << 8) | tail[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
        out.push(parseInt(piece, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...new Array(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return bytes;
}

/** The four bytes of a dotted IPv4 literal, or null for anything else. */
export function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i]) || Number(parts[i]) > 255) return null;
    bytes[i] = Number(parts[i]);
  }
  return bytes;
}

/** Whether `host` listens on every interface (so others must be told another name for it). */
export function isWildcardHost(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "" || host === "[::]";
}
