import { compareCandidates } from "./select_active.ts";

/** One observer's health reading of one backend. */
export interface NodeView {
  healthy: boolean;
  index: number | null;
}

/** One observer's health view of every backend it probes, by backend name (unknown ones left out). */
export type HealthView = Record<string, NodeView>;

/**
 * The failover candidate in one view: healthy, not excluded or drained, lowest
 * `wsrep_local_index` first, ties by name; null when there is none.
 */
export function viewCandidate(
  view: HealthView,
  exclude: string | null,
  drained: readonly string[] = [],
): { name: string; index: number | null } | null {
  const fit = Object.entries(view)
    .filter(([name, v]) => v.healthy && name !== exclude && !drained.includes(name))
    .map(([name, v]) => ({ name, wsrepLocalIndex: v.index }))
    .sort(compareCandidates);
  return fit[0] ? { name: fit[0].name, index: fit[0].wsrepLocalIndex } : null;
}
