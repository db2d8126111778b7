import type { Register } from "./register.ts";
import { compareCandidates } from "./select_active.ts";

/** One proxy's health view of one backend. */
export interface NodeView {
  healthy: boolean;
  index: number | null;
}

/** One proxy's health view of every backend it probes, by backend name. */
export type HealthView = Record<string, NodeView>;

/** What the decision needs: this proxy's name, the register, and the views of live proxies. */
export interface GroupInput {
  self: string;
  register: Register;
  /** Views of every live proxy, this one included, by proxy name. */
  views: Record<string, HealthView>;
  /** Backends an operator has drained here: never chosen anew. */
  drained?: ReadonlySet<string>;
  now: number;
}

/** What this proxy should do: propose a new register (or not), and where to route now. */
export interface GroupDecision {
  propose: Register | null;
  /** The node this proxy routes new sessions to; null to refuse them. */
  route: string | null;
  /** Why, in one line: for the log, the API, and the error packet of a refused client. */
  reason: string;
}

/**
 * The failover rule, written down in docs/peers.md:
 *
 * - The active node stays while it is not down for a strict majority of live proxies (this one
 *   included). A proxy alone in seeing it down does not move the group: it routes nowhere and
 *   refuses new sessions until its own view or the group changes.
 * - When a strict majority of live proxies see it down, the group moves to the node a strict
 *   majority sees healthy with the lowest wsrep_local_index (ties by name). A sole survivor is a
 *   majority of one, so it can still fail over.
 * - With no active node, the same candidate is proposed as soon as one exists.
 *
 * Pure: the same inputs give the same decision on every proxy.
 */
export function decideGroup(input: GroupInput): GroupDecision {
  const { register, views, self } = input;
  const live = Object.keys(views).length;
  const majority = (count: number) => count * 2 > live;
  const local = views[self] ?? {};
  const active = register.active;

  if (active !== null) {
    const down = Object.values(views).filter((v) => v[active]?.healthy === false).length;
    if (!majority(down)) {
      if (local[active]?.healthy === true) {
        return {
          propose: null,
          route: active,
          reason: `${active} is active (epoch ${register.epoch})`,
        };
      }
      const seen = local[active] === undefined ? "has no health reading of" : "sees";
      return {
        propose: null,
        route: null,
        reason:
          `this proxy ${seen} ${active} down but the group does not (${down} of ${live} live proxies); refusing rather than routing alone`,
      };
    }
    const why = `${active} is down for ${down} of ${live} live proxies`;
    return propose(input, active, why);
  }
  return propose(input, null, register.epoch === 0 ? "no active node yet" : "no active node");
}

function propose(input: GroupInput, exclude: string | null, why: string): GroupDecision {
  const candidate = groupCandidate(input.views, exclude, input.drained);
  const { register, self, now } = input;
  if (candidate === null && register.active === null) {
    return {
      propose: null,
      route: null,
      reason: `${why}; no node is healthy for a majority of proxies`,
    };
  }
  const reason = candidate === null
    ? `${why}; no node is healthy for a majority of proxies`
    : `${why}; ${candidate.name} has the ${
      candidate.index === null
        ? "best name (no wsrep_local_index reported)"
        : `lowest wsrep_local_index ${candidate.index}`
    }`;
  const next: Register = {
    cluster: register.cluster,
    epoch: register.epoch + 1,
    proposer: self,
    active: candidate?.name ?? null,
    reason,
    time: now,
  };
  return { propose: next, route: next.active, reason };
}

/**
 * The node a strict majority of live proxies see healthy, lowest wsrep_local_index first, ties
 * by name; null when there is none.
 */
export function groupCandidate(
  views: Record<string, HealthView>,
  exclude: string | null,
  drained?: ReadonlySet<string>,
): { name: string; index: number | null } | null {
  const live = Object.keys(views).length;
  const names = new Set<string>();
  for (const view of Object.values(views)) for (const name of Object.keys(view)) names.add(name);
  const fit: { name: string; healthy: boolean; wsrepLocalIndex: number | null }[] = [];
  for (const name of names) {
    if (name === exclude || drained?.has(name)) continue;
    const reports = Object.values(views).map((v) => v[name]).filter((r) => r !== undefined);
    const healthy = reports.filter((r) => r.healthy).length;
    if (healthy * 2 <= live) continue;
    const indexes = reports.filter((r) => r.healthy && r.index !== null).map((r) => r.index!);
    fit.push({
      name,
      healthy: true,
      wsrepLocalIndex: indexes.length ? Math.min(...indexes) : null,
    });
  }
  const best = fit.sort(compareCandidates)[0];
  return best ? { name: best.name, index: best.wsrepLocalIndex } : null;
}
