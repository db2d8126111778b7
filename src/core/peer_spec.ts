import { parseHostPort } from "./address.ts";

/** A proxy to gossip with: its stable name and its UDP peer address. */
export interface PeerAddress {
  name: string;
  host: string;
  port: number;
}

/** The UDP port peers use when a spec gives none (HAProxy peers' port in the seed design). */
export const DEFAULT_PEER_PORT = 10000;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/**
 * Parses `NAME=HOST[:PORT]`, the port defaulting to 10000. Throws a TypeError quoting the value.
 * The same list may be given to every proxy: the entry with a proxy's own name is its own.
 */
export function parsePeerSpec(text: string): PeerAddress {
  const eq = text.indexOf("=");
  const name = text.slice(0, eq);
  if (eq <= 0 || !NAME.test(name)) {
    throw new TypeError(
      `"${text}": expected NAME=HOST[:PORT] with a name of letters, digits, '.', '_' or '-'`,
    );
  }
  const rest = text.slice(eq + 1);
  const address = parseHostPort(rest, "") ??
    (/^[^:\s\[\]]+$/.test(rest) ? { host: rest, port: DEFAULT_PEER_PORT } : undefined) ??
    (/^\[[0-9a-fA-F:.]+\]$/.test(rest)
      ? { host: rest.slice(1, -1), port: DEFAULT_PEER_PORT }
      : undefined);
  if (!address || address.host === "" || address.port === 0) {
    throw new TypeError(`"${text}": expected NAME=HOST[:PORT]`);
  }
  return { name, host: address.host, port: address.port };
}
