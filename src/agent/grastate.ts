import { readFileSync, renameSync, writeFileSync } from "node:fs";

/** What grastate.dat says about a stopped node's state. */
export interface GraState {
  uuid: string;
  seqno: number;
  safeToBootstrap: boolean;
}

/**
 * Parses grastate.dat (`uuid:`, `seqno:`, `safe_to_bootstrap:` lines). Throws a TypeError naming
 * what is missing; seqno -1 means the node did not shut down cleanly (recover it).
 */
export function parseGrastate(text: string): GraState {
  const field = (name: string) => new RegExp(`^${name}:\\s*(\\S+)\\s*$`, "m").exec(text)?.[1];
  const uuid = field("uuid");
  const seqno = field("seqno");
  if (!uuid || !/^[0-9a-f-]{36}$/i.test(uuid)) {
    throw new TypeError(`grastate.dat has no valid uuid: ${JSON.stringify(uuid ?? null)}`);
  }
  if (!seqno || !/^-?\d+$/.test(seqno)) {
    throw new TypeError(`grastate.dat has no valid seqno: ${JSON.stringify(seqno ?? null)}`);
  }
  return { uuid, seqno: Number(seqno), safeToBootstrap: field("safe_to_bootstrap") === "1" };
}

/** Reads and parses `<datadir>/grastate.dat`. */
export function readGrastate(datadir: string): GraState {
  return parseGrastate(readFileSync(`${datadir}/grastate.dat`, "utf8"));
}

/**
 * Sets `safe_to_bootstrap: 1` in grastate.dat (atomically), as an operator does by hand before
 * `galera_new_cluster` on the node the plan chose. Keeps the file's owner by rewriting in place.
 */
export function markSafeToBootstrap(datadir: string): void {
  const file = `${datadir}/grastate.dat`;
  const text = readFileSync(file, "utf8");
  const next = /^safe_to_bootstrap:.*$/m.test(text)
    ? text.replace(/^safe_to_bootstrap:.*$/m, "safe_to_bootstrap: 1")
    : `${text.trimEnd()}\nsafe_to_bootstrap: 1\n`;
  if (next === text) return;
  const tmp = `${file}.galerad.tmp`;
  writeFileSync(tmp, next);
  renameSync(tmp, file);
}

/** Reads the position `mysqld --wsrep-recover` logged ("WSREP: Recovered position: UUID:SEQNO"). */
export function parseRecoveredPosition(log: string): { uuid: string; seqno: number } | null {
  const matches = [...log.matchAll(/Recovered position:\s+([0-9a-f-]{36}):(-?\d+)/gi)];
  const last = matches.at(-1);
  return last ? { uuid: last[1], seqno: Number(last[2]) } : null;
}
