import { type AgreementMessage, leaseRequestOf } from "./agreement_message.ts";
import { type HealthView, viewCandidate } from "./health_view.ts";
import { mayWrite, type Ranks } from "./select_active.ts";
import {
  forgetGrant,
  type HeldGrant,
  leasedNode,
  noteRequest,
  recordAnswer,
  released,
  startHolder,
} from "./lease_holder.ts";
import type { HolderState } from "./lease_holder.ts";
import {
  answerRequest,
  answerWaiting,
  followRegister,
  judgeRegister,
  type LeaseTimers,
  startVoter,
  type VoterState,
} from "./lease_voter.ts";
import {
  compareRegisters,
  emptyRegister,
  MAX_EPOCH,
  MAX_EPOCH_STEP,
  MAX_REASON,
  type Register,
  type RegisterKind,
  sameRegister,
} from "./register.ts";
import { majorityOf, type QuorumMode, voterDigest } from "./voter_set.ts";

/** Everything the agreement of one proxy needs to know; fixed for its life. */
export interface AgreementConfig {
  self: string;
  cluster: string;
  mode: QuorumMode;
  /** The fixed voter set: the proxies (self included), the backends' agents, or self alone. */
  voters: readonly string[];
  /** The other proxies this one gossips with. */
  peers: readonly string[];
  backends: readonly string[];
  /** Operators' priorities and `writer=false` marks; every proxy of a tier must have the same. */
  ranks?: Ranks;
  /** To agents: where each backend's agent answers, so they probe the nodes themselves. */
  targets?: Record<string, string>;
  timers: AgreementTimers;
}

export interface AgreementTimers extends LeaseTimers {
  /** A voter holding a register no majority joined goes back to the majority's after this. */
  settleMs: number;
  /** After start, new sessions wait (rather than being refused) this long for a lease. */
  startupHoldMs: number;
}

/** Two clocks: monotonic for every decision, wall only to stamp a register for display. */
export interface Clock {
  mono: number;
  wall: number;
}

/** What this proxy knows of one other party. */
export interface PartyInfo {
  /** Our monotonic clock when we last heard it; null: never. */
  at: number | null;
  incarnation: string;
  register: Register | null;
  view: HealthView;
  serving: string | null;
  /** Its voter-set digest differs from ours: it is not counted. */
  mismatch: string | null;
}

/** Where new sessions go: a node, or none, waiting (hold) or refused, with why. */
export interface Route {
  node: string | null;
  hold: boolean;
  reason: string;
}

export interface AgreementState {
  config: AgreementConfig;
  digest: string;
  incarnation: string;
  holder: HolderState;
  /** Our vote, when this proxy is a voter (proxies or none mode). */
  voter: VoterState | null;
  view: HealthView;
  drained: readonly string[];
  epochSeen: number;
  /** Our last proposal, while it may still be pending. */
  proposal: Register | null;
  /** Each party's latest word, by name. */
  parties: Record<string, PartyInfo>;
  /** The latest register each party offered, judged again when our view changes. */
  offered: Record<string, Register>;
  /** Our clock when each party that does not vote last had news from us on a tick. */
  toldAt: Record<string, number>;
  /**
   * The newest register a party that does not vote told us of, for which every voter was asked
   * at once: the same news from the others asks nothing more.
   */
  askedFor: Register | null;
  route: Route;
  startedAt: number;
  /** Whether this life has served yet: only until then do new sessions wait at start. */
  served: boolean;
  /** The proxy is stopping: it gives up what it serves and never takes a lease again. */
  leaving: boolean;
}

export type AgreementEvent =
  | { type: "tick" }
  | { type: "message"; message: AgreementMessage }
  | { type: "view"; view: HealthView }
  | { type: "severed"; node: string }
  | { type: "switchover"; target: string; reason: string }
  | { type: "drained"; names: readonly string[] }
  /** The proxy stops: release the lease (after a confirmed sever) and tell every voter at once. */
  | { type: "leave" };

export type AgreementEffect =
  | { type: "send"; message: AgreementMessage }
  | { type: "persist"; epochSeen: number; register: Register }
  | { type: "sever"; node: string; reason: string }
  | { type: "route"; route: Route }
  | { type: "drop"; reason: "voter_set" | "unknown_peer" | "wrong_cluster" | "misdirected" }
  | { type: "log"; level: "info" | "warn" | "error"; message: string }
  /** Feed a tick again after this long: a handover is waiting on another holder's release. */
  | { type: "wake"; afterMs: number };

/** Starts the agreement of one proxy: nothing served until a majority of voters grants it. */
export function startAgreement(
  config: AgreementConfig,
  init: { incarnation: string; now: Clock; saved?: { register: Register; epochSeen: number } },
): AgreementState {
  const saved = init.saved?.register.cluster === config.cluster ? init.saved : undefined;
  const register = saved?.register ?? emptyRegister(config.cluster);
  const votes = config.voters.includes(config.self);
  const parties: Record<string, PartyInfo> = {};
  for (const name of new Set([...config.voters, ...config.peers])) {
    if (name !== config.self) {
      parties[name] = {
        at: null,
        incarnation: "",
        register: null,
        view: {},
        serving: null,
        mismatch: null,
      };
    }
  }
  return {
    config,
    // Availability-first proxies vote alone, but must still agree on who the tier is.
    digest: voterDigest(
      config.mode,
      config.mode === "none" ? [config.self, ...config.peers] : config.voters,
    ),
    incarnation: init.incarnation,
    holder: startHolder(init.incarnation),
    voter: votes
      ? startVoter(register, init.now.mono, config.timers, { alone: config.voters.length === 1 })
      : null,
    view: {},
    drained: [],
    epochSeen: Math.max(saved?.epochSeen ?? 0, register.epoch),
    proposal: null,
    parties,
    offered: {},
    toldAt: {},
    askedFor: null,
    route: { node: null, hold: true, reason: "starting: no lease from the voters yet" },
    startedAt: init.now.mono,
    served: false,
    leaving: false,
  };
}

/**
 * The whole agreement of one proxy as a pure step: the event in, the new state and the effects
 * out (sends, persists, severs, routes, logs), carried out by the shell in order. No clock,
 * timer or socket inside: src/proxy/agreement_shell.ts feeds it; tests/core/agreement_sim.ts
 * drives many of them through seeded faults.
 */
export function step(
  state: AgreementState,
  event: AgreementEvent,
  now: Clock,
): { state: AgreementState; effects: AgreementEffect[] } {
  const s: AgreementState = { ...state };
  const fx: AgreementEffect[] = [];
  switch (event.type) {
    case "tick":
      tick(s, now, fx);
      break;
    case "message":
      receive(s, event.message, now, fx);
      break;
    case "view":
      s.view = event.view;
      rejudge(s, now, fx);
      askRecovered(s, state.view, now, fx);
      break;
    case "severed":
      if (s.holder.serving === event.node && s.holder.severing) {
        s.holder = released(s.holder);
        fx.push({ type: "log", level: "info", message: `sessions on ${event.node} are closed` });
      }
      break;
    case "switchover":
      propose(s, now, fx, { active: event.target, kind: "switchover", why: event.reason });
      break;
    case "drained":
      s.drained = event.names;
      break;
    case "leave":
      s.leaving = true;
      break;
  }
  settle(s, state.holder.serving, now, fx);
  return { state: s, effects: fx };
}

/**
 * A voter is asked on every tick, unless it renewed our lease on the node we serve within a
 * quarter lease: a settled tier's requests then come every quarter lease rather than every tick,
 * and a grant that is late or lost is asked again each tick from then on, well before the lease
 * (less the guard) runs out. Every change is asked at once, not on a tick (`receive`, `settle`).
 * A party that does not vote (another proxy, when agents or a few proxies vote) needs our news
 * only to know we are there and what we serve: every change reaches it at once, so on ticks it
 * hears from us every quarter lease, well within the lease that it waits before it calls us
 * unheard. That keeps a large tier's news linear. A voter skips the news to a holder that asked
 * it within two quarters (holders ask every quarter lease, on the next tick after it): the answer
 * told it all the news would (a reply is built as news is), so a voter's datagrams are its
 * answers and its requests.
 */
function tick(s: AgreementState, now: Clock, fx: AgreementEffect[]): void {
  const every = s.config.mode === "none" ? 0 : s.config.timers.leaseMs / 4;
  const told: Record<string, number> = {};
  const follow = followTarget(s, now);
  for (const to of targetsOf(s)) {
    if (!isVoter(s, to)) {
      const last = s.toldAt[to];
      if (last !== undefined && now.mono - last < every) continue;
      told[to] = now.mono;
      if (s.voter && asked(s, to, now, 2 * every)) continue;
    } else if (
      renewedWithin(s.holder, to, now, every) || standsWithin(s, to, now, every)
    ) continue;
    fx.push({ type: "send", message: build(s, to, now, undefined, true, follow) });
  }
  s.toldAt = { ...s.toldAt, ...told };
}

/**
 * Whether `voter` granted the node we serve, in answer to a request sent within `withinMs` while
 * serving it: such a grant has most of its lease left, so it need not be renewed yet.
 */
function renewedWithin(h: HolderState, voter: string, now: Clock, withinMs: number): boolean {
  if (h.serving === null || h.severing) return false;
  const grant = h.grants[voter];
  const asked = h.asked[voter];
  return grant !== undefined && asked !== undefined && grant.node === h.serving &&
    grant.t >= asked.lastNull && now.mono - grant.t < withinMs;
}

/**
 * While we serve nothing: whether `voter`'s answer to our latest request, given within
 * `withinMs`, still stands, the voter not having moved since (as far as its news tells; a move
 * is asked again at once, in `receive`): a grant of a node we could serve (it counts only as
 * the answer to our latest request, so asking again would void it until the new answer came), a
 * refusal that waits (the voter grants it itself once the old node is released), or a refusal
 * of a node we see down. In a handover every holder serves nothing: asking every voter on every
 * tick is a tier's square of requests per tick, at the moment its processes have the least time
 * to spare.
 */
function standsWithin(s: AgreementState, voter: string, now: Clock, withinMs: number): boolean {
  const h = s.holder;
  // Only proxies that vote tell every party of each move; an agent is heard only in its answers.
  if (h.serving !== null || s.config.mode !== "proxies") return false;
  const answer = h.grants[voter];
  const asked = h.asked[voter];
  const heard = s.parties[voter]?.register;
  if (answer === undefined || asked === undefined || answer.t !== asked.last) return false;
  if (now.mono - answer.t >= withinMs || !heard || !sameRegister(heard, answer.register)) {
    return false;
  }
  const down = (node: string | null) => node !== null && s.view[node]?.healthy === false;
  // A grant we could serve, a refusal that waits, or a refusal of a node we see down (a voter
  // does not grant what we would not serve): each stands until the voter moves or our view does.
  return answer.node !== null
    ? !down(answer.node)
    : answer.wait === true || down(answer.register.active);
}

/**
 * While we serve nothing: a voter that refused us a node we saw down is asked again at once
 * when we see that node healthy again (a probe that failed once), as it would have granted it.
 */
function askRecovered(
  s: AgreementState,
  before: HealthView,
  now: Clock,
  fx: AgreementEffect[],
): void {
  if (s.holder.serving !== null || s.config.mode !== "proxies") return;
  for (const voter of s.config.voters) {
    const answer = s.holder.grants[voter];
    const node = answer?.node === null && !answer.wait ? answer.register.active : null;
    if (voter === s.config.self || node === null) continue;
    if (before[node]?.healthy !== false || s.view[node]?.healthy !== true) continue;
    fx.push({ type: "send", message: build(s, voter, now) });
  }
}

/**
 * Whether `holder` asked this voter for a lease within `withinMs`: every proxy holds leases and
 * asks every voter at least every quarter lease (a proxy of an agents tier never votes), so a
 * voter has answered whatever it heard from one lately.
 */
function asked(s: AgreementState, holder: string, now: Clock, withinMs: number): boolean {
  const p = s.parties[holder];
  return p !== undefined && p.at !== null && p.mismatch === null && now.mono - p.at < withinMs &&
    s.config.mode === "proxies";
}

/** Everyone this proxy sends to: every voter but itself, and the other proxies. */
function targetsOf(s: AgreementState): string[] {
  return Object.keys(s.parties);
}

function isVoter(s: AgreementState, name: string): boolean {
  return s.config.voters.includes(name);
}

/**
 * A message to `to`: a reply when it carries a grant, else a lease request to a voter when `ask`,
 * else news. News (a vote, a proposal) is not a request: a holder that serves nothing counts only
 * the answer to its latest request, so asking on every change would starve it of answers.
 */
function build(
  s: AgreementState,
  to: string,
  now: Clock,
  grant?: AgreementMessage["grant"],
  ask = true,
  /** The register to follow, computed once by a caller that writes to many. */
  follow = followTarget(s, now),
): AgreementMessage {
  const message: AgreementMessage = {
    kind: grant ? "reply" : ask && isVoter(s, to) ? "request" : "state",
    from: s.config.self,
    to,
    incarnation: s.incarnation,
    digest: s.digest,
    register: ownRegister(s),
    epochSeen: s.epochSeen,
    view: s.view,
    serving: s.holder.serving,
  };
  if (grant) message.grant = grant;
  if (message.kind === "request") {
    const noted = noteRequest(s.holder, to, now.mono);
    s.holder = noted.state;
    message.request = { t: noted.t, serving: s.holder.serving, lease: s.config.timers.leaseMs };
    if (s.config.mode === "agents" && s.config.targets) message.targets = s.config.targets;
  }
  if (follow) message.follow = follow;
  return message;
}

/** What we tell others we hold: our vote, or (not voting) the group's register or our proposal. */
function ownRegister(s: AgreementState): Register {
  if (s.voter) return s.voter.register;
  const group = groupRegister(s, null) ?? emptyRegister(s.config.cluster);
  return s.proposal && compareRegisters(s.proposal, group) > 0 ? s.proposal : group;
}

function receive(s: AgreementState, m: AgreementMessage, now: Clock, fx: AgreementEffect[]): void {
  const party = s.parties[m.from];
  if (m.from === s.config.self || !party) {
    return void fx.push({ type: "drop", reason: "unknown_peer" });
  }
  if (m.to !== s.config.self) return void fx.push({ type: "drop", reason: "misdirected" });
  if (m.register.cluster !== s.config.cluster) {
    return void fx.push({ type: "drop", reason: "wrong_cluster" });
  }
  if (m.digest !== s.digest) {
    if (party.mismatch !== m.digest) {
      fx.push({
        type: "log",
        level: "error",
        message:
          `${m.from} counts another voter set (digest ${m.digest}, ours ${s.digest}): it is not counted, and does not count us, until both are started with the same --peers and --quorum`,
      });
    }
    s.parties = { ...s.parties, [m.from]: { ...party, mismatch: m.digest } };
    return void fx.push({ type: "drop", reason: "voter_set" });
  }
  if (party.at === null || now.mono - party.at > s.config.timers.leaseMs) {
    fx.push({
      type: "log",
      level: "info",
      message: `${m.from} is heard (epoch ${m.register.epoch}, active ${
        m.register.active ?? "none"
      })`,
    });
  }
  const register = heldCopy(s, party, m.register);
  s.parties = {
    ...s.parties,
    [m.from]: {
      at: now.mono,
      incarnation: m.incarnation,
      register,
      view: m.view,
      serving: m.serving,
      mismatch: null,
    },
  };
  // What one party claims to have seen raises ours only so far past what we know.
  const known = Math.max(s.epochSeen, ownRegister(s).epoch, groupRegister(s, null)?.epoch ?? 0);
  const ceiling = Math.min(MAX_EPOCH, known + MAX_EPOCH_STEP);
  s.epochSeen = Math.max(s.epochSeen, Math.min(ceiling, Math.max(m.epochSeen, m.register.epoch)));
  if (m.kind === "reply" && m.grant && isVoter(s, m.from)) {
    const next = recordAnswer(s.holder, m.from, s.config.timers, {
      ...m.grant,
      register,
    });
    if (next) s.holder = next;
  }
  if (s.voter) {
    s.offered = { ...s.offered, [m.from]: register };
    judge(s, register, `offered by ${m.from}`, now, fx);
    if (m.follow) follow(s, m.follow, `${m.from} reports it as the group's`, now, fx);
    if (m.kind === "request" && m.request) {
      const answered = answerRequest(
        s.voter,
        { ...leaseRequestOf(m, m.request), view: m.view },
        now.mono,
        { timers: s.config.timers, digest: s.digest },
      );
      if (answered) {
        s.voter = answered.state;
        fx.push({
          type: "send",
          message: build(s, m.from, now, {
            t: m.request.t,
            incarnation: m.incarnation,
            ...answered.answer,
          }),
        });
      }
    }
  }
  // A voter that moved since its last answer to us. Its grant of the node we serve, if it moved
  // away from that node, is given up here: it would only refuse our next request with "release
  // it first", and a holder may always count less; our release tells it. Anything else is asked
  // again at once, unless the voter is keeping our request to grant it when it can.
  const answer = s.holder.grants[m.from];
  if (
    isVoter(s, m.from) && m.kind !== "request" && answer &&
    !sameRegister(answer.register, m.register)
  ) {
    if (answer.node !== null && answer.node === s.holder.serving) {
      if (m.register.active !== answer.node && compareRegisters(m.register, answer.register) > 0) {
        s.holder = forgetGrant(s.holder, m.from);
      }
    } else if (!answer.wait) {
      // A grant of a node we do not serve is released by asking again; a refusal is re-asked.
      fx.push({ type: "send", message: build(s, m.from, now) });
    }
  }
  // A proxy that is not a voter (agents mode, or --voters) telling of a newer register: every
  // voter is asked at once, rather than at our next tick, so a handover does not wait on the
  // slowest holder. Once per register: in a large tier every other holder tells the same news,
  // and asking every voter for each of them would flood the voters in the middle of a change.
  const news = isVoter(s, m.from) ? null : newsOfMove(s, m, now);
  const lease = news && leasedNode(s.holder, s.config.voters, now.mono, s.config.timers);
  if (
    news && lease && compareRegisters(news, lease.register) > 0 && news.active !== lease.node &&
    (s.askedFor === null || compareRegisters(news, s.askedFor) > 0)
  ) {
    s.askedFor = news;
    const follow = followTarget(s, now);
    for (const to of s.config.voters) {
      if (to !== s.config.self) {
        fx.push({ type: "send", message: build(s, to, now, undefined, true, follow) });
      }
    }
  }
}

/**
 * The register that a proxy's news says the voters may have moved to, for `receive` to ask
 * them about. Agents tell a move only in their answers, so any newer register a proxy holds is
 * worth asking about. Proxies that vote tell every party of each move at once, and a voter that
 * moves away from the node we serve gives up its grant here (`receive`): the news adds only
 * a vote we missed, as a register the sender counts a majority of voters on and our own count
 * does not show yet. A proposal is not such news: the voters decide it and then tell us. In a
 * large tier every proposal a holder hears used to ask every voter again, the greater part of
 * a handover's datagrams.
 */
function newsOfMove(s: AgreementState, m: AgreementMessage, now: Clock): Register | null {
  if (s.config.mode !== "proxies") return m.register;
  if (!m.follow?.majority) return null;
  const group = groupRegister(s, now);
  return group === null || compareRegisters(m.follow.register, group) > 0
    ? m.follow.register
    : null;
}

/**
 * The register a party sent, as the object we already hold when it is the same one (its last,
 * our vote, or another party's): most messages repeat a register, and the majority counts
 * (groupRegister) then compare by identity rather than field by field.
 */
function heldCopy(s: AgreementState, party: PartyInfo, r: Register): Register {
  if (party.register && sameRegister(party.register, r)) return party.register;
  if (s.voter && sameRegister(s.voter.register, r)) return s.voter.register;
  for (const name in s.parties) {
    const held = s.parties[name].register;
    if (held && sameRegister(held, r)) return held;
  }
  return r;
}

/** Our view changed: registers offered earlier may be justified now. */
function rejudge(s: AgreementState, now: Clock, fx: AgreementEffect[]): void {
  if (!s.voter) return;
  const offers = Object.entries(s.offered).sort(([, a], [, b]) => compareRegisters(b, a));
  for (const [from, register] of offers) judge(s, register, `offered by ${from}`, now, fx);
}

/** The backends a register may name as active: all but those marked `writer=false`. */
function writers(config: AgreementConfig): string[] {
  return config.backends.filter((b) => mayWrite(config.ranks ?? {}, b));
}

function judge(
  s: AgreementState,
  register: Register,
  source: string,
  now: Clock,
  fx: AgreementEffect[],
): void {
  const voter = s.voter!;
  const ok = judgeRegister(voter.register, register, s.view, {
    backends: writers(s.config),
    anyLarger: s.config.mode === "none",
  });
  if (ok) vote(s, register, source, now, fx);
}

function follow(
  s: AgreementState,
  target: { register: Register; majority: boolean },
  source: string,
  now: Clock,
  fx: AgreementEffect[],
): void {
  if (s.config.mode === "none") return;
  const ok = followRegister(s.voter!, target, now.mono, {
    backends: writers(s.config),
    settleMs: s.config.timers.settleMs,
  });
  if (ok) vote(s, target.register, source, now, fx);
}

/** Our vote changes: persisted first, then told to every party. */
function vote(
  s: AgreementState,
  register: Register,
  source: string,
  now: Clock,
  fx: AgreementEffect[],
): void {
  const previous = s.voter!.register;
  s.voter = { ...s.voter!, register, since: now.mono };
  s.epochSeen = Math.max(s.epochSeen, register.epoch);
  fx.push({ type: "persist", epochSeen: s.epochSeen, register });
  fx.push({
    type: "log",
    level: "warn",
    message: `vote: epoch ${register.epoch} active ${register.active ?? "none"} (was ${
      previous.active ?? "none"
    } at epoch ${previous.epoch}), by ${register.proposer}, ${source}: ${register.reason}`,
  });
  const follow = followTarget(s, now);
  for (const to of targetsOf(s)) {
    fx.push({ type: "send", message: build(s, to, now, undefined, false, follow) });
  }
}

/**
 * The register a strict majority of voters holds now, as far as we heard; null if none (its first
 * held copy). At most one register can be held by a strict majority. Usually it is the first
 * heard; otherwise a majority vote over the rest finds the only other candidate in one pass, so
 * a large tier in the middle of a change does not compare every pair for every message.
 */
function groupRegister(s: AgreementState, now: Clock | null): Register | null {
  const held = heardRegisters(s, now);
  if (held.length === 0) return null;
  const need = majorityOf(s.config.voters.length);
  if (copiesOf(held, held[0]).count >= need) return held[0];
  let candidate = held[0];
  let lead = 0;
  for (const r of held) {
    if (lead === 0) [candidate, lead] = [r, 1];
    else lead += sameRegister(r, candidate) ? 1 : -1;
  }
  const { count, first } = copiesOf(held, candidate);
  return count >= need ? first : null;
}

/** How many of `held` equal `r`, and the first that does. */
function copiesOf(held: Register[], r: Register): { count: number; first: Register | null } {
  let count = 0;
  let first: Register | null = null;
  for (const x of held) {
    if (!sameRegister(x, r)) continue;
    count++;
    first ??= x;
  }
  return { count, first };
}

/** The registers of the voters heard within a lease (all ever heard, when `now` is null). */
function heardRegisters(s: AgreementState, now: Clock | null): Register[] {
  const out: Register[] = [];
  for (const voter of s.config.voters) {
    if (voter === s.config.self && s.voter) {
      out.push(s.voter.register);
      continue;
    }
    const r = heardRegister(s, s.parties[voter], now);
    if (r) out.push(r);
  }
  return out;
}

/** What `party` holds, if it counts (same voter set) and was heard within a lease (ever: null). */
function heardRegister(
  s: AgreementState,
  party: PartyInfo | undefined,
  now: Clock | null,
): Register | null {
  if (!party || party.at === null || party.register === null || party.mismatch !== null) {
    return null;
  }
  return now && now.mono - party.at > s.config.timers.leaseMs ? null : party.register;
}

/** The majority's register, else the largest of a majority's; what voters should converge to. */
function followTarget(
  s: AgreementState,
  now: Clock,
): { register: Register; majority: boolean } | undefined {
  if (s.config.mode === "none") return undefined;
  const group = groupRegister(s, now);
  if (group) return { register: group, majority: true };
  const held = heardRegisters(s, now);
  if (held.length < majorityOf(s.config.voters.length)) return undefined;
  return {
    register: held.reduce((a, b) => (compareRegisters(a, b) >= 0 ? a : b)),
    majority: false,
  };
}

/**
 * Proposes a change of the active node: a failover when the group's node is down in our view,
 * the first node when none was ever decided, or an operator's switchover. The new epoch is
 * persisted before anything is sent, and carries our incarnation, so no life of this proxy ever
 * names two nodes under one version.
 */
function propose(
  s: AgreementState,
  now: Clock,
  fx: AgreementEffect[],
  change?: { active: string; kind: RegisterKind; why: string },
): void {
  const base = s.config.mode === "none" ? s.voter!.register : groupRegister(s, now);
  if (!base) return;
  let active: string;
  let kind: RegisterKind;
  let reason: string;
  if (change) {
    ({ active, kind } = change);
    reason = `switchover by operator: ${change.why}`;
  } else {
    const down = base.active !== null && s.view[base.active]?.healthy === false;
    if (base.active !== null && !down) return;
    const candidate = viewCandidate(s.view, base.active, s.drained, s.config.ranks);
    if (!candidate) return;
    active = candidate.name;
    kind = base.active === null ? "initial" : "failover";
    const index = candidate.index === null
      ? "the first name (no wsrep_local_index reported)"
      : `the lowest wsrep_local_index ${candidate.index}`;
    const pick = s.config.ranks && Object.keys(s.config.ranks).length > 0
      ? `the lowest priority ${candidate.priority}, then ${index}`
      : index;
    reason = base.active === null
      ? `no active node yet; ${active} has ${pick}`
      : `${base.active} is down here; ${active} has ${pick}`;
  }
  const pending = s.proposal !== null && compareRegisters(s.proposal, base) > 0 &&
    s.proposal.active === active && s.proposal.previous === base.active;
  const voted = s.voter !== null && compareRegisters(s.voter.register, base) > 0 &&
    s.voter.register.active === active;
  if (pending || voted) return;
  const seen = change ? null : proposalSeen(s, base, active, now);
  if (seen) {
    s.proposal = seen;
    fx.push({
      type: "log",
      level: "info",
      message: `${seen.proposer} proposes epoch ${seen.epoch}: ${active}, as this proxy would`,
    });
    return;
  }
  // Past everything seen, but never further past the group's register than voters accept (a
  // tier whose voters lost their state files is at a low epoch while we remember a high one).
  const epoch = Math.min(Math.max(s.epochSeen, base.epoch) + 1, base.epoch + MAX_EPOCH_STEP);
  if (epoch > MAX_EPOCH) {
    fx.push({
      type: "log",
      level: "error",
      message: `cannot propose: epoch ${epoch} is above ${MAX_EPOCH}`,
    });
    return;
  }
  const register: Register = {
    cluster: s.config.cluster,
    epoch,
    proposer: s.config.self,
    incarnation: s.incarnation,
    active,
    previous: base.active,
    kind,
    reason: reason.slice(0, MAX_REASON),
    time: Math.max(0, Math.floor(now.wall)),
  };
  s.epochSeen = epoch;
  s.proposal = register;
  fx.push({ type: "persist", epochSeen: epoch, register: s.voter?.register ?? register });
  fx.push({
    type: "log",
    level: "warn",
    message: `proposing epoch ${epoch}: ${active} (${reason})`,
  });
  if (s.voter) judge(s, register, "proposed here", now, fx);
  if (!s.voter || !sameRegister(s.voter.register, register)) {
    const follow = followTarget(s, now);
    for (const to of targetsOf(s)) {
      fx.push({ type: "send", message: build(s, to, now, undefined, false, follow) });
    }
  }
}

/**
 * A proposal of this very change (`active` after `base`'s node) that a party heard within a
 * lease holds, the largest if several. We carry it as our own rather than propose one epoch
 * past it: every proxy that sees a failure would otherwise outbid the proposals it heard, and
 * voters that each took a different one of them add up to no majority until the largest
 * reaches all of them. Carried, it reaches the voters in our requests too, from proxies they
 * may hear when they do not hear its proposer.
 */
function proposalSeen(
  s: AgreementState,
  base: Register,
  active: string,
  now: Clock,
): Register | null {
  if (s.config.mode === "none") return null;
  let best: Register | null = null;
  for (const name in s.parties) {
    const r = heardRegister(s, s.parties[name], now);
    if (r === null || r.active !== active || r.previous !== base.active) continue;
    if (r.kind === "switchover" || compareRegisters(r, base) <= 0) continue;
    if (r.epoch > base.epoch + MAX_EPOCH_STEP) continue;
    if (best === null || compareRegisters(r, best) > 0) best = r;
  }
  return best;
}

/** Our holder asks our own vote, in process, as it asks every other voter over the wire. */
function askSelf(s: AgreementState, now: Clock): void {
  if (!s.voter) return;
  const noted = noteRequest(s.holder, s.config.self, now.mono);
  s.holder = noted.state;
  const t = noted.t;
  const answered = answerRequest(
    s.voter,
    {
      holder: s.config.self,
      incarnation: s.incarnation,
      t,
      serving: s.holder.serving,
      lease: s.config.timers.leaseMs,
      digest: s.digest,
      view: s.view,
    },
    now.mono,
    { timers: s.config.timers, digest: s.digest },
  );
  if (!answered) return;
  s.voter = answered.state;
  const next = recordAnswer(s.holder, s.config.self, s.config.timers, {
    t,
    incarnation: s.incarnation,
    register: s.voter.register,
    ...answered.answer,
  });
  if (next) s.holder = next;
}

/**
 * After every event: our vote follows the majority, a failover is proposed when due, and the
 * holder serves what a majority grants it, severing what it may no longer serve.
 */
function settle(
  s: AgreementState,
  /** What the holder served before this event: a confirmed sever changes it before we run. */
  before: string | null,
  now: Clock,
  fx: AgreementEffect[],
): void {
  if (s.voter) {
    const target = followTarget(s, now);
    if (target) follow(s, target, "following the majority", now, fx);
  }
  if (!s.leaving) propose(s, now, fx);
  if (s.voter) answerWaiters(s, now, fx);
  for (let round = 0; round < 3; round++) {
    askSelf(s, now);
    const serving = s.holder.serving;
    serve(s, now, fx);
    if (s.holder.serving === serving) break;
  }
  if (s.holder.serving !== before && s.holder.serving === null) {
    // A release: every voter hears it at once, so that it may grant anew. Serving a node needs
    // no such news: every voter that counts already granted it, in answer to our request.
    const follow = followTarget(s, now);
    for (const to of s.config.voters) {
      if (to !== s.config.self) {
        fx.push({ type: "send", message: build(s, to, now, undefined, true, follow) });
      }
    }
  }
  // Waiting on the voters judging our own proposal (an agent learns of a failure by its probes):
  // ask again soon, not at the next tick.
  const held = leasedNode(s.holder, s.config.voters, now.mono, s.config.timers);
  const proposed = s.proposal !== null && held !== null &&
    compareRegisters(s.proposal, held.register) > 0 && s.view[held.node]?.healthy === false;
  // A refusal that waits on another holder's release needs no retry: the voter grants it on the
  // release (answerWaiting), and the next tick asks again if that grant was lost.
  if (s.holder.serving === null && proposed) fx.push({ type: "wake", afterMs: 25 });
  const route = routeOf(s, now);
  if (
    route.node !== s.route.node || route.hold !== s.route.hold || route.reason !== s.route.reason
  ) {
    s.route = route;
    fx.push({ type: "route", route });
  }
}

/** Holders refused only until the old node's last holder released it are granted now. */
function answerWaiters(s: AgreementState, now: Clock, fx: AgreementEffect[]): void {
  const done = answerWaiting(s.voter!, now.mono, { timers: s.config.timers, digest: s.digest });
  s.voter = done.state;
  if (done.answers.length === 0) return;
  const follow = followTarget(s, now);
  for (const { request, answer } of done.answers) {
    // Our own holder asks in process on every step (askSelf).
    if (request.holder === s.config.self) continue;
    const grant = { t: request.t, incarnation: request.incarnation, ...answer };
    fx.push({ type: "send", message: build(s, request.holder, now, grant, true, follow) });
  }
}

/** Holder transitions: start severing what we may no longer serve, or serve what is granted. */
function serve(s: AgreementState, now: Clock, fx: AgreementEffect[]): void {
  const h = s.holder;
  const lease = leasedNode(h, s.config.voters, now.mono, s.config.timers);
  if (h.serving !== null && !h.severing) {
    const why = s.leaving
      ? "this proxy is stopping"
      : lease === null
      ? `lease lost: ${grantSummary(s, now)}`
      : lease.node !== h.serving
      ? `the group moved to ${lease.node} (epoch ${lease.register.epoch})`
      : s.view[h.serving]?.healthy !== true
      ? `this proxy sees ${h.serving} down`
      : null;
    if (why === null) return;
    s.holder = { ...h, severing: true };
    fx.push({ type: "sever", node: h.serving, reason: why });
    return;
  }
  if (h.serving === null && !s.leaving && lease && s.view[lease.node]?.healthy === true) {
    s.holder = { ...h, serving: lease.node };
    s.served = true;
    fx.push({
      type: "log",
      level: "info",
      message:
        `serving ${lease.node}: granted by ${lease.count} of ${s.config.voters.length} voters (epoch ${lease.register.epoch})`,
    });
  }
}

function routeOf(s: AgreementState, now: Clock): Route {
  const h = s.holder;
  if (s.leaving) return { node: null, hold: false, reason: "proxy is shutting down" };
  if (h.serving !== null && !h.severing) {
    const lease = leasedNode(h, s.config.voters, now.mono, s.config.timers);
    const why = lease && lease.register.active === h.serving
      ? ` (epoch ${lease.register.epoch}: ${lease.register.reason})`
      : "";
    return { node: h.serving, hold: false, reason: `${h.serving} is active${why}` };
  }
  const heard = heardRegisters(s, now).length;
  const need = majorityOf(s.config.voters.length);
  const starting = !s.served && now.mono - s.startedAt < s.config.timers.startupHoldMs;
  if (h.severing) {
    return { node: null, hold: true, reason: `handing over: closing sessions on ${h.serving}` };
  }
  if (heard < need) {
    return {
      node: null,
      hold: starting,
      reason:
        `no quorum: this proxy hears ${heard} of ${s.config.voters.length} voters (${s.config.mode}), ${need} needed; refusing rather than routing alone`,
    };
  }
  // The group's node, as our lease names it, else as a majority of the voters hold it: voters
  // do not grant a node to a holder that sees it down, so a lone dissenter holds no lease on it.
  const group = leasedNode(h, s.config.voters, now.mono, s.config.timers)?.node ??
    groupRegister(s, now)?.active ?? null;
  const candidate = viewCandidate(s.view, null, s.drained, s.config.ranks);
  if (group !== null && s.view[group]?.healthy === false && candidate !== null) {
    return {
      node: null,
      hold: false,
      reason:
        `the group is on ${group} but this proxy sees it down; refusing rather than routing alone`,
    };
  }
  return {
    node: null,
    hold: starting || candidate !== null,
    reason: candidate === null
      ? noWriterReason(s)
      : `waiting for a majority of voters to grant a node: ${grantSummary(s, null)}`,
  };
}

/** Why no node can take the writer role: none healthy, or only `writer=false` ones. */
function noWriterReason(s: AgreementState): string {
  const readers = Object.entries(s.view)
    .filter(([name, v]) =>
      v.healthy && !s.drained.includes(name) && !mayWrite(s.config.ranks ?? {}, name)
    )
    .map(([name]) => name);
  return readers.length === 0
    ? "no healthy Galera node is active; try again later"
    : `no healthy Galera node may be the writer: ${readers.join(", ")} ${
      readers.length === 1 ? "is" : "are"
    } writer=false; try again later`;
}

/**
 * One line on what each voter last answered, for refusals and the log; with each grant's age
 * when `now` is given. A route's reason goes without: it would change on every step, and each
 * change is a route effect.
 */
function grantSummary(s: AgreementState, now: Clock | null): string {
  const parts = s.config.voters.map((voter) => {
    const g: HeldGrant | undefined = s.holder.grants[voter];
    if (!g) return `${voter}: no answer`;
    if (g.node === null) return `${voter}: ${g.why}`;
    return now
      ? `${voter}: ${g.node} (${Math.round(now.mono - g.t)}ms ago)`
      : `${voter}: ${g.node}`;
  });
  return parts.join("; ");
}

/** The register the group serves as far as this proxy can tell, for the API and the log. */
export function currentRegister(s: AgreementState, now: Clock): Register {
  const lease = leasedNode(s.holder, s.config.voters, now.mono, s.config.timers);
  // Without a lease: the group's register as last heard, never a vote of ours no one joined.
  return lease?.register ?? groupRegister(s, now) ?? groupRegister(s, null) ?? ownRegister(s);
}

/**
 * Follows a new backend or peer list without a new life, when the voter set stays the same:
 * backends and peers only shape who is told what and which registers can be judged. Returns
 * null when the voters would change: the caller starts a new agreement (a new voter set is a
 * new tier), severing what it served.
 */
export function reconfigure(
  s: AgreementState,
  change: Partial<Pick<AgreementConfig, "backends" | "peers" | "ranks" | "targets" | "voters">>,
): AgreementState | null {
  const config = { ...s.config, ...change };
  const same = (a: readonly string[], b: readonly string[]) =>
    a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
  if (!same(config.voters, s.config.voters)) return null;
  if (config.mode === "none" && !same(config.peers, s.config.peers)) return null;
  const parties: Record<string, PartyInfo> = {};
  for (const name of new Set([...config.voters, ...config.peers])) {
    if (name === config.self) continue;
    parties[name] = s.parties[name] ??
      { at: null, incarnation: "", register: null, view: {}, serving: null, mismatch: null };
  }
  return { ...s, config, parties };
}

/** Why an operator's switchover to `target` cannot be asked now; null when it can. */
export function switchoverProblem(
  s: AgreementState,
  target: string,
  now: Clock,
): { status: 409 | 503; message: string } | null {
  if (!s.config.backends.includes(target)) {
    return { status: 409, message: `no backend named "${target}"` };
  }
  if (!mayWrite(s.config.ranks ?? {}, target)) {
    return { status: 409, message: `${target} is writer=false: it is never the active node` };
  }
  if (s.drained.includes(target)) {
    return { status: 409, message: `${target} is drained: enable it first` };
  }
  if (s.view[target]?.healthy !== true) {
    return { status: 409, message: `${target} is not healthy here` };
  }
  const group = s.config.mode === "none" ? s.voter!.register : groupRegister(s, now);
  if (!group) {
    return {
      status: 503,
      message:
        `no quorum: this proxy does not hear a majority of its ${s.config.voters.length} voters agree`,
    };
  }
  if (group.active === target) {
    return { status: 409, message: `${target} is already the active node` };
  }
  return null;
}
