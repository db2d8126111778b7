import { compareCandidates, mayWrite, type Ranks } from "./select_active.ts";

/** One observer's health reading of one backend. */
export interface NodeView {
  healthy: boolean;
  index: number | null;
}

/** One observer's health view of every backend it probes, by backend name (unknown ones left out). */
export type HealthView = Record<string, NodeView>;

/** The chosen candidate, with what chose it (for the log's reason). */
export interface ViewCandidate {
  name: string;
  index: number | null;
  priority: number;
}

/**
 * The failover candidate in one view: healthy, not excluded, drained or `writer=false`; lowest
 * priority, then lowest `wsrep_local_index`, then name; null when there is none.
 */
export function viewCandidate(
  view: HealthView,
  exclude: string | null,
  drained: readonly string[] = [],
  ranks: Ranks = {},
): ViewCandidate | null {
  const fit = Object.entries(view)
    .filter(([name, v]) =>
      v.healthy && name !== exclude && !drained.includes(name) && mayWrite(ranks, name)
    )
    .map(([name, v]) => ({
      name,
      wsrepLocalIndex: v.index,
      priority: ranks[name]?.priority ?? 0,
    }))
    .sort(compareCandidates);
  return fit[0]
    ? { name: fit[0].name, index: fit[0].wsrepLocalIndex, priority: fit[0].priority }
    : null;
}
