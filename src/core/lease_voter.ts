import type { HealthView } from "./health_view.ts";
import {
  compareRegisters,
  MAX_EPOCH,
  MAX_EPOCH_STEP,
  type Register,
  sameRegister,
} from "./register.ts";

/** Lease timers, shared by voters and holders; docs/peers.md explains each. */
export interface LeaseTimers {
  /** How long a grant lets a holder serve, from the moment the holder asked (its own clock). */
  leaseMs: number;
  /** Extra time a voter keeps a grant on its books, for clock rate drift and slow severs. */
  marginMs: number;
  /** A holder starts severing this long before its lease runs out, so the sever is done by then. */
  guardMs: number;
}

/** What a voter remembers of one holder's life: the node it may be serving under our grant. */
export interface GrantRecord {
  holder: string;
  incarnation: string;
  /** The node our last grant named while the holder still serves it; null: nothing held. */
  node: string | null;
  /** Our clock: until then the holder may have sessions on `node`. */
  expires: number;
  /** The holder's clock stamp of the last request we answered: older ones are ignored. */
  lastT: number;
  /** The holder's voter-set digest. */
  digest: string;
  /** Its last request, refused only while another holder held the old node: answered on release. */
  waiting?: LeaseRequest;
}

/** A voter: one proxy (`--quorum proxies`) or one agent (`--quorum agents`). */
export interface VoterState {
  register: Register;
  /** Our clock: when we took `register` (a voter reverts to the majority's only after a while). */
  since: number;
  /** Our clock: no grant before this, so every grant of an earlier life has expired first. */
  quietUntil: number;
  records: GrantRecord[];
}

/** A holder asking for a lease on whatever node the voter holds. */
export interface LeaseRequest {
  holder: string;
  incarnation: string;
  /** The holder's monotonic clock when it sent this; the grant runs from here. */
  t: number;
  /** The lease the holder asks for (its --lease); we grant at most our own. */
  lease: number;
  /** The node the holder may have sessions on now; null once it has none (confirmed). */
  serving: string | null;
  digest: string;
  /**
   * The holder's health view when it asked (it never starts to serve a node it sees down), as
   * proxies that vote read it: they tell every party of each move, and a holder they refused
   * for it asks again then. An agent tells its moves only in its answers, so it grants anyway.
   */
  view?: HealthView;
}

/** The answer: the node granted (null: refused), for how long, and why (for the log and API). */
export interface GrantAnswer {
  node: string | null;
  /** How long the grant runs from the request's stamp: the smaller of both leases. */
  lease: number;
  why: string;
  /** Refused only until another holder releases the old node: worth asking again soon. */
  wait?: boolean;
}

/** A voter just started: it grants nothing until a full lease and margin have passed. */
export function startVoter(
  register: Register,
  now: number,
  timers: LeaseTimers,
  options: { alone: boolean },
): VoterState {
  // A voter that is its own only holder cannot leave a grant behind in another process.
  const quiet = options.alone ? 0 : timers.leaseMs + timers.marginMs;
  return { register, since: now, quietUntil: now + quiet, records: [] };
}

/**
 * Answers one lease request. The safety rule lives here: every unexpired grant this voter has
 * given names one node. A grant for another node waits until each holder of the old one has
 * released it (a request saying it serves something else, sent only after its sessions there
 * are confirmed closed) or its grant has expired on our clock. Returns null for a request older
 * than the last one answered for the same holder life (reordered): it is ignored.
 */
export function answerRequest(
  state: VoterState,
  request: LeaseRequest,
  now: number,
  options: VoterOptions,
): { state: VoterState; answer: GrantAnswer } | null {
  return decide(state, request, now, options, false);
}

/** What a voter checks a request against: its timers, and its voter-set digest (null: any). */
export interface VoterOptions {
  timers: LeaseTimers;
  digest: string | null;
}

/**
 * Grants the requests that were refused only because another holder still held the old node,
 * once none does, without waiting for their holders to ask again: in a handover every holder
 * would otherwise retry at once, and a large tier's retries queue behind each other. A late
 * answer is safe as a delayed datagram is: the voter's record runs from now, and the holder
 * counts it from its own stamp, and only while that request is still its latest.
 */
export function answerWaiting(
  state: VoterState,
  now: number,
  options: VoterOptions,
): { state: VoterState; answers: { request: LeaseRequest; answer: GrantAnswer }[] } {
  const none = { state, answers: [] };
  // Runs on every step: nothing is allocated unless someone waits.
  if (!state.records.some((r) => r.waiting && r.expires > now)) return none;
  const live = state.records.filter((r) => r.expires > now);
  const node = state.register.active;
  // Checked once for all: while any holder still holds another node, nobody waiting is granted.
  if (node === null || live.some((r) => r.node !== null && r.node !== node)) return none;
  let next: VoterState = { ...state, records: live };
  const answers: { request: LeaseRequest; answer: GrantAnswer }[] = [];
  for (const record of live) {
    const request = record.waiting;
    if (!request) continue;
    const answered = decide(next, request, now, options, true);
    if (answered && answered.answer.node !== null) {
      next = answered.state;
      answers.push({ request, answer: answered.answer });
    } else {
      // Refused for another reason now (the register moved): the holder's next request decides.
      next = {
        ...next,
        records: next.records.map((r) => r === record ? { ...r, waiting: undefined } : r),
      };
    }
  }
  return { state: next, answers };
}

/** The voter rule; `again`: the same request once more (answerWaiting), not a replay. */
function decide(
  state: VoterState,
  request: LeaseRequest,
  now: number,
  options: VoterOptions,
  again: boolean,
): { state: VoterState; answer: GrantAnswer } | null {
  // One pass over the live records: this holder life's own, and everyone else's.
  let mine: GrantRecord | undefined;
  const others: GrantRecord[] = [];
  for (const r of state.records) {
    if (r.expires <= now) continue;
    if (!mine && r.holder === request.holder && r.incarnation === request.incarnation) mine = r;
    else others.push(r);
  }
  if (mine && (again ? mine.waiting !== request : request.t <= mine.lastT)) return null;
  // A holder that no longer serves what we granted has released it (it discarded our grant).
  const held = mine && mine.node !== null && mine.node === request.serving ? mine : undefined;
  const keep: GrantRecord = {
    holder: request.holder,
    incarnation: request.incarnation,
    node: held?.node ?? null,
    expires: held?.expires ?? now + options.timers.leaseMs + options.timers.marginMs,
    lastT: request.t,
    digest: request.digest,
  };
  const lease = Math.min(request.lease, options.timers.leaseMs);
  const refuse = (why: string, wait = false) => ({
    state: { ...state, records: [...others, wait ? { ...keep, waiting: request } : keep] },
    answer: wait ? { node: null, lease, why, wait } : { node: null, lease, why },
  });
  const node = state.register.active;
  if (now < state.quietUntil) {
    return refuse(
      `restarted: no grant for another ${
        Math.round(state.quietUntil - now)
      }ms, until every lease of its earlier life has expired`,
    );
  }
  if (options.digest !== null && request.digest !== options.digest) {
    return refuse(`voter sets differ (digest ${request.digest}, ours ${options.digest})`);
  }
  const foreign = others.find((r) => r.node !== null && r.digest !== request.digest);
  if (foreign) {
    return refuse(
      `${foreign.holder} holds a lease here under another voter set (${foreign.digest})`,
    );
  }
  if (node === null) return refuse("no active node decided");
  if (request.serving !== null && request.serving !== node) {
    return refuse(`the group moved to ${node}: release ${request.serving} first`);
  }
  // A grant the holder cannot use would still be on our books for a lease, and hold up the
  // handover to another node until the holder asked again.
  if (request.serving === null && request.view?.[node]?.healthy === false) {
    return refuse(`${request.holder} sees ${node} down`);
  }
  const blocking = others.find((r) => r.node !== null && r.node !== node);
  if (blocking) {
    return refuse(
      `waiting for ${blocking.holder} to release ${blocking.node} or for its lease to expire`,
      true,
    );
  }
  const granted = { ...keep, node, expires: now + lease + options.timers.marginMs };
  return {
    state: { ...state, records: [...others, granted] },
    answer: { node, lease, why: `granted ${node} (epoch ${state.register.epoch})` },
  };
}

/** How a voter judges a register it did not propose; docs/peers.md, "Voting". */
export interface JudgeOptions {
  /** The configured backends: a register naming another node is never accepted. */
  backends: readonly string[];
  /** Availability-first: take any larger register unless we see its node down. */
  anyLarger?: boolean;
}

/**
 * Whether a register at `epoch` may replace one at `current`: at most MAX_EPOCH_STEP further,
 * or, for a voter that has nothing yet (a lost state file), anywhere in the lower half of the
 * epoch space, so that it can rejoin a long-running tier but no one can push it to the end.
 */
export function withinReach(current: number, epoch: number): boolean {
  return epoch <= current + MAX_EPOCH_STEP || (current === 0 && epoch <= MAX_EPOCH / 2);
}

/**
 * Whether a voter takes `incoming` in place of `current`, by its own health view: a failover
 * only when it too sees the replaced node down and the new one healthy, a switchover when it
 * sees the target healthy. Only larger registers are taken; a voter follows the majority
 * separately (followRegister), which is how a minority's larger register is undone.
 */
export function judgeRegister(
  current: Register,
  incoming: Register,
  view: HealthView,
  options: JudgeOptions,
): boolean {
  if (incoming.cluster !== current.cluster || compareRegisters(incoming, current) <= 0) {
    return false;
  }
  if (!withinReach(current.epoch, incoming.epoch)) return false;
  const { active, previous } = incoming;
  if (active === null || !options.backends.includes(active)) return false;
  if (active === current.active) return true;
  if (options.anyLarger) return view[active]?.healthy !== false;
  if (view[active]?.healthy !== true) return false;
  if (incoming.kind === "switchover") return true;
  return previous === null
    ? current.active === null || view[current.active]?.healthy !== true
    : view[previous]?.healthy !== true;
}

/**
 * Whether a voter takes a register that a holder (or this proxy) reports: one it saw a strict
 * majority of voters hold, or, when none has a majority, the largest of a majority's. A
 * majority's register is taken at once when it is larger than ours, and when smaller only once
 * ours has stood for `settleMs` without a majority joining it: that is how a voter left holding
 * a minority's proposal rejoins the group, without undoing a proposal the others are still
 * judging. The largest of a split is taken only after `settleMs` too, so that two proposals
 * seen differently cannot chase each other.
 */
export function followRegister(
  state: VoterState,
  follow: { register: Register; majority: boolean },
  now: number,
  options: { backends: readonly string[]; settleMs: number },
): boolean {
  const current = state.register;
  const { register } = follow;
  if (register.cluster !== current.cluster || sameRegister(register, current)) return false;
  if (register.active === null || !options.backends.includes(register.active)) return false;
  if (!withinReach(current.epoch, register.epoch)) return false;
  const settled = now - state.since >= options.settleMs;
  const larger = compareRegisters(register, current) > 0;
  return follow.majority ? larger || settled : larger && settled;
}
