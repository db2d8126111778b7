/** What the selection needs to know about one backend. */
export interface Candidate {
  name: string;
  healthy: boolean;
  wsrepLocalIndex: number | null;
  /** Drained by an operator: keeps its sessions for now, never chosen anew. */
  maintenance?: boolean;
}

/** The outcome of one selection round. */
export interface Decision {
  active: string | null;
  changed: boolean;
  reason: string;
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

/** The node a failover would pick now, or undefined when none is eligible. */
export function failoverCandidate(
  backends: readonly Candidate[],
  exclude?: string | null,
): Candidate | undefined {
  return backends
    .filter((b) => b.healthy && !b.maintenance && b.name !== exclude)
    .sort(compareCandidates)[0];
}

/**
 * Decides which node receives traffic. Sticky: the current active node stays for as long as
 * it is healthy and not drained, whatever the indexes say; a recovered node never takes
 * traffic back. Otherwise the healthy node with the lowest `wsrep_local_index` wins, ties by
 * name.
 */
export function chooseActive(backends: readonly Candidate[], current: string | null): Decision {
  const present = current === null ? undefined : backends.find((b) => b.name === current);
  if (present && present.healthy && !present.maintenance) {
    return { active: current, changed: false, reason: `${current} is healthy` };
  }
  const why = current === null
    ? "no active node"
    : !present
    ? `${current} was removed`
    : present.maintenance
    ? `${current} is in maintenance`
    : `${current} is unhealthy`;
  const next = failoverCandidate(backends);
  if (!next) {
    return { active: null, changed: current !== null, reason: `${why}; no healthy node left` };
  }
  const index = next.wsrepLocalIndex === null
    ? "no wsrep_local_index reported"
    : `lowest wsrep_local_index ${next.wsrepLocalIndex}`;
  return { active: next.name, changed: true, reason: `${why}; ${next.name} has the ${index}` };
}
