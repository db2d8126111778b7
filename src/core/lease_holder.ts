import type { LeaseTimers } from "./lease_voter.ts";
import type { Register } from "./register.ts";

/** A voter's last answer to this holder. */
export interface HeldGrant {
  /** The node granted; null: refused. */
  node: string | null;
  /** Our clock when we asked: the grant runs from here, for `lease`. */
  t: number;
  lease: number;
  /** The voter's register when it answered. */
  register: Register;
  why: string;
  /** Refused only until another holder releases the old node (a handover in progress). */
  wait?: boolean;
}

/** A proxy as lease holder: what it may serve, under whose grants. */
export interface HolderState {
  incarnation: string;
  /** The last answer of each voter. */
  grants: Record<string, HeldGrant>;
  /** Answers to requests stamped up to this are void: we released everything after sending them. */
  releasedAt: number;
  /** The node we may have sessions on; it stays set until their close is confirmed. */
  serving: string | null;
  /** A sever of `serving` was asked of the data plane and is not confirmed yet. */
  severing: boolean;
  /** Our clock stamp of the last request sent to anyone (stamps only grow). */
  lastT: number;
  /** Per voter: the stamps of the last request, and of the last one saying we serve nothing. */
  asked: Record<string, { last: number; lastNull: number }>;
}

/** A holder just started: it holds nothing; only answers to this life's requests count. */
export function startHolder(incarnation: string): HolderState {
  return {
    incarnation,
    grants: {},
    releasedAt: -1,
    serving: null,
    severing: false,
    lastT: -1,
    asked: {},
  };
}

/** Stamps a request to `voter` (a strictly growing stamp, our clock) and notes what it says. */
export function noteRequest(
  state: HolderState,
  voter: string,
  now: number,
): { state: HolderState; t: number } {
  const t = Math.max(now, state.lastT + 0.001);
  const before = state.asked[voter] ?? { last: -1, lastNull: -1 };
  const asked = { last: t, lastNull: state.serving === null ? t : before.lastNull };
  return { state: { ...state, lastT: t, asked: { ...state.asked, [voter]: asked } }, t };
}

/**
 * Keeps a voter's answer if it answers a request of this life, sent since our last release and
 * newer than the answer we hold (or grants what the answer we hold said to wait for); returns
 * null otherwise (a replayed, reordered or foreign one).
 */
export function recordAnswer(
  state: HolderState,
  voter: string,
  timers: LeaseTimers,
  answer: {
    t: number;
    incarnation: string;
    node: string | null;
    lease: number;
    register: Register;
    why: string;
    wait?: boolean;
  },
): HolderState | null {
  if (answer.incarnation !== state.incarnation) return null;
  if (answer.t <= state.releasedAt || answer.t > (state.asked[voter]?.last ?? -1)) return null;
  const held = state.grants[voter];
  // A refusal that waited on another holder's release may be followed by the grant itself.
  const late = held?.wait === true && answer.node !== null && answer.t === held.t;
  if (held && answer.t <= held.t && !late) return null;
  const { t, node, register, why } = answer;
  const lease = Math.min(answer.lease, timers.leaseMs);
  const grant: HeldGrant = {
    t,
    node,
    lease,
    register,
    why,
    ...(answer.wait ? { wait: true } : {}),
  };
  return { ...state, grants: { ...state.grants, [voter]: grant } };
}

/** Gives up a voter's grant before it runs out: counting less is always safe. */
export function forgetGrant(state: HolderState, voter: string): HolderState {
  if (!(voter in state.grants)) return state;
  const { [voter]: _, ...grants } = state.grants;
  return { ...state, grants };
}

/**
 * The grants we may count now: given no longer ago than a lease less the sever guard, and still
 * on the voter's books. A voter drops our record when a later request says we serve something
 * else, so while we serve nothing only the answer to our last request counts, and while we
 * serve a node only answers to requests sent since we last said we served nothing.
 */
export function liveGrants(
  state: HolderState,
  now: number,
  timers: LeaseTimers,
): Record<string, HeldGrant> {
  const out: Record<string, HeldGrant> = {};
  for (const voter in state.grants) {
    const grant = liveGrant(state, voter, now, timers);
    if (grant) out[voter] = grant;
  }
  return out;
}

/** One voter's grant if we may count it now (see liveGrants), else undefined. */
function liveGrant(
  state: HolderState,
  voter: string,
  now: number,
  timers: LeaseTimers,
): HeldGrant | undefined {
  const grant = state.grants[voter];
  if (grant === undefined || grant.node === null) return undefined;
  if (grant.t + grant.lease - timers.guardMs <= now) return undefined;
  const asked = state.asked[voter];
  if (!asked) return undefined;
  const current = state.serving === null ? grant.t === asked.last : grant.t >= asked.lastNull;
  return current ? grant : undefined;
}

/**
 * The node a strict majority of the voters grants us now, with the largest register among those
 * grants; null when no node has a majority. Only such a node may be served.
 */
export function leasedNode(
  state: HolderState,
  voters: readonly string[],
  now: number,
  timers: LeaseTimers,
): { node: string; count: number; register: Register } | null {
  // Counted in place, with nothing allocated for a node no grant names: this runs several
  // times on every message and tick, over every voter.
  let byNode: Map<string, { count: number; register: Register }> | null = null;
  for (const voter of voters) {
    const grant = liveGrant(state, voter, now, timers);
    if (!grant) continue;
    byNode ??= new Map();
    const seen = byNode.get(grant.node!);
    if (!seen) byNode.set(grant.node!, { count: 1, register: grant.register });
    else {
      seen.count++;
      // The largest register; among equal epochs, the first voter's.
      if (grant.register.epoch > seen.register.epoch) seen.register = grant.register;
    }
  }
  if (byNode === null) return null;
  for (const [node, { count, register }] of byNode) {
    if (count * 2 > voters.length) return { node, count, register };
  }
  return null;
}

/**
 * The data plane confirmed that no session is left on the node we served: we hold nothing now,
 * and the answer to every request sent so far is void (voters may drop our record once they
 * hear that we serve nothing).
 */
export function released(state: HolderState): HolderState {
  return { ...state, serving: null, severing: false, releasedAt: state.lastT, grants: {} };
}
