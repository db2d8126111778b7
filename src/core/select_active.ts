/** What candidate ordering needs to know about one backend. */
export interface Candidate {
  name: string;
  wsrepLocalIndex: number | null;
  /** Lower first; absent is 0. */
  priority?: number;
}

/** An operator's say on one backend's writer role (backend spec `priority=`, `writer=`). */
export interface Rank {
  priority: number;
  /** False: never chosen as the active node. */
  writer: boolean;
}

/** Ranks by backend name; a backend not listed has priority 0 and may be the writer. */
export type Ranks = Readonly<Record<string, Rank>>;

/**
 * Orders failover candidates: lowest priority first, then lowest `wsrep_local_index` (nodes
 * whose agent does not report one come last), then by name, so every proxy that sees the same
 * health and has the same configuration picks the same node.
 */
export function compareCandidates(a: Candidate, b: Candidate): number {
  const ap = a.priority ?? 0;
  const bp = b.priority ?? 0;
  if (ap !== bp) return ap < bp ? -1 : 1;
  const ai = a.wsrepLocalIndex ?? Number.POSITIVE_INFINITY;
  const bi = b.wsrepLocalIndex ?? Number.POSITIVE_INFINITY;
  if (ai !== bi) return ai < bi ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** Whether `name` may hold the writer role at all. */
export function mayWrite(ranks: Ranks, name: string): boolean {
  return ranks[name]?.writer !== false;
}
