/** What the reader choice needs of one backend. */
export interface ReaderCandidate {
  name: string;
  healthy: boolean;
  /** Drained by an operator or in maintenance: no new sessions. */
  drained: boolean;
  /** Reader sessions it carries now. */
  sessions: number;
}

/** Where reader clients go when no node but the active one is healthy. */
export type ReaderFallback = "active" | "refuse";

export const READER_FALLBACKS: readonly ReaderFallback[] = ["active", "refuse"];

export type ReaderChoice =
  | { node: string; fallback: boolean }
  | { node: null; reason: "no_reader" | "no_active_node"; message: string };

/**
 * Where a new reader session goes: a healthy, undrained node that is not the group's active
 * node, the one with the fewest reader sessions first, ties by name. When there is none, the
 * active node (fallback `active`, when it is healthy and undrained) or a refusal saying why.
 */
export function chooseReader(
  nodes: readonly ReaderCandidate[],
  active: string | null,
  fallback: ReaderFallback,
): ReaderChoice {
  const fit = nodes.filter((n) => n.healthy && !n.drained);
  const readers = fit.filter((n) => n.name !== active).sort((a, b) =>
    a.sessions - b.sessions || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  );
  if (readers[0]) return { node: readers[0].name, fallback: false };
  const writer = fit.find((n) => n.name === active);
  if (fallback === "active" && writer) return { node: writer.name, fallback: true };
  if (fallback === "refuse" && writer) {
    return {
      node: null,
      reason: "no_reader",
      message:
        `no healthy node but the active one (${writer.name}), and --reader-fallback is refuse`,
    };
  }
  return { node: null, reason: "no_active_node", message: "no healthy Galera node to read from" };
}

/**
 * Whether a reader session on `node` must be severed now: the node is gone, unhealthy or
 * drained, or (fallback `refuse`) it became the active node.
 */
export function severReader(
  node: ReaderCandidate | undefined,
  active: string | null,
  fallback: ReaderFallback,
): string | null {
  if (!node) return "it left the configuration";
  if (!node.healthy) return "it is unhealthy";
  if (node.drained) return "it is drained";
  if (fallback === "refuse" && node.name === active) {
    return "it became the active node (--reader-fallback refuse)";
  }
  return null;
}
