/**
 * The sticky register the proxies replicate: which node is active, decided by whom, at which
 * epoch. Ordered by (epoch, proposer), never by wall-clock time, so every proxy that has seen the
 * same registers holds the same one whatever order they arrived in.
 */
export interface Register {
  cluster: string;
  /** 0 until the first decision; every change is the largest epoch seen + 1. */
  epoch: number;
  /** Name of the proxy that made this change (breaks ties between equal epochs). */
  proposer: string;
  /** The node all proxies route to; null when no node is fit. */
  active: string | null;
  /** Why this change was made, for operators. */
  reason: string;
  /** Wall-clock milliseconds of the change: for display only, never for ordering. */
  time: number;
}

/** The register before any decision. */
export function emptyRegister(cluster: string): Register {
  return { cluster, epoch: 0, proposer: "", active: null, reason: "no decision yet", time: 0 };
}

/** Orders registers by epoch, then proposer name; 0 means the same version. */
export function compareRegisters(a: Register, b: Register): number {
  if (a.epoch !== b.epoch) return a.epoch < b.epoch ? -1 : 1;
  return a.proposer < b.proposer ? -1 : a.proposer > b.proposer ? 1 : 0;
}

/**
 * Merges two registers: the larger by (epoch, proposer) wins. Commutative, associative and
 * idempotent, so gossip may deliver registers in any order, any number of times.
 */
export function mergeRegisters(a: Register, b: Register): Register {
  return compareRegisters(a, b) >= 0 ? a : b;
}

/** The register that replaces `current` with a decision made by `proposer`. */
export function nextRegister(
  current: Register,
  change: { proposer: string; active: string | null; reason: string; time: number },
): Register {
  return { cluster: current.cluster, epoch: current.epoch + 1, ...change };
}
