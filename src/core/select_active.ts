/** What candidate ordering needs to know about one backend. */
export interface Candidate {
  name: string;
  wsrepLocalIndex: number | null;
}

/**
 * Orders failover candidates: lowest `wsrep_local_index` first (nodes whose agent does not
 * report one come last), then by name, so every proxy that sees the same health picks the
 * same node.
 */
export function compareCandidates(a: Candidate, b: Candidate): number {
  const ai = a.wsrepLocalIndex ?? Number.POSITIVE_INFINITY;
  const bi = b.wsrepLocalIndex ?? Number.POSITIVE_INFINITY;
  if (ai !== bi) return ai < bi ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
