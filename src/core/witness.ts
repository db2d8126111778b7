import { type AgreementMessage, leaseRequestOf } from "./agreement_message.ts";
import type { Clock } from "./agreement.ts";
import type { HealthView } from "./health_view.ts";
import {
  answerRequest,
  answerWaiting,
  followRegister,
  type GrantAnswer,
  judgeRegister,
  type LeaseRequest,
  startVoter,
  type VoterState,
} from "./lease_voter.ts";
import type { AgreementTimers } from "./agreement.ts";
import { compareRegisters, emptyRegister, type Register } from "./register.ts";

/** A `galerad healthcheck` agent voting in `--quorum agents`: fixed for its life. */
export interface WitnessConfig {
  cluster: string;
  /** The name proxies must address it by; null: whatever name each request uses. */
  name: string | null;
  timers: AgreementTimers;
}

export interface WitnessState {
  config: WitnessConfig;
  incarnation: string;
  voter: VoterState;
  /** Our own health view of the backends, from probing their agents (the targets). */
  view: HealthView;
  /** The latest register each holder offered, judged again when our view changes. */
  offered: Record<string, Register>;
  /** The backends' health URLs the holders gave, with our clock when last given. */
  targets: Record<string, { url: string; at: number }>;
  /** The name each holder addresses us by (with no --vote-name, whatever it uses): late answers. */
  addressedAs: Record<string, string>;
}

export type WitnessEvent =
  | { type: "message"; message: AgreementMessage }
  | { type: "view"; view: HealthView };

export type WitnessEffect =
  | { type: "send"; message: AgreementMessage }
  | { type: "persist"; register: Register }
  | { type: "targets"; targets: Record<string, string> }
  | { type: "drop"; reason: "misdirected" | "wrong_cluster" }
  | { type: "log"; level: "info" | "warn"; message: string };

/** Targets not given again for this long are no longer probed. */
export const TARGET_TTL_MS = 60_000;

export function startWitness(
  config: WitnessConfig,
  init: { incarnation: string; now: Clock; saved?: Register },
): WitnessState {
  const register = init.saved?.cluster === config.cluster
    ? init.saved
    : emptyRegister(config.cluster);
  return {
    config,
    incarnation: init.incarnation,
    voter: startVoter(register, init.now.mono, config.timers, { alone: false }),
    view: {},
    offered: {},
    targets: {},
    addressedAs: {},
  };
}

/**
 * The agent's vote as a pure step. It judges each register a holder offers by its own probes of
 * the nodes (never by the holder's word), follows the majority the holders report, and answers
 * every lease request by the voter rule (core/lease_voter.ts).
 */
export function witnessStep(
  state: WitnessState,
  event: WitnessEvent,
  now: Clock,
): { state: WitnessState; effects: WitnessEffect[] } {
  const s: WitnessState = { ...state };
  const fx: WitnessEffect[] = [];
  const backends = () => Object.keys(s.targets);
  const take = (register: Register, source: string) => {
    const previous = s.voter.register;
    s.voter = { ...s.voter, register, since: now.mono };
    fx.push({ type: "persist", register });
    fx.push({
      type: "log",
      level: "warn",
      message: `vote: epoch ${register.epoch} active ${register.active} (was ${
        previous.active ?? "none"
      }), by ${register.proposer}, ${source}: ${register.reason}`,
    });
  };
  const judge = (register: Register, source: string) => {
    if (judgeRegister(s.voter.register, register, s.view, { backends: backends() })) {
      take(register, source);
    }
  };
  if (event.type === "view") {
    s.view = event.view;
    const offers = Object.entries(s.offered).sort(([, a], [, b]) => compareRegisters(b, a));
    for (const [from, register] of offers) judge(register, `offered by ${from}`);
    return { state: s, effects: answerWaiters(s, now, fx) };
  }
  const m = event.message;
  if (s.config.name !== null && m.to !== s.config.name) {
    fx.push({ type: "drop", reason: "misdirected" });
    return { state: s, effects: fx };
  }
  if (m.register.cluster !== s.config.cluster) {
    fx.push({ type: "drop", reason: "wrong_cluster" });
    return { state: s, effects: fx };
  }
  if (m.targets) {
    const urls = (t: WitnessState["targets"]) =>
      JSON.stringify(Object.entries(t).map(([k, v]) => [k, v.url]).sort());
    const before = urls(s.targets);
    const next: WitnessState["targets"] = {};
    for (const [name, t] of Object.entries(s.targets)) {
      if (now.mono - t.at < TARGET_TTL_MS) next[name] = t;
    }
    for (const [name, url] of Object.entries(m.targets)) next[name] = { url, at: now.mono };
    s.targets = next;
    if (urls(next) !== before) {
      fx.push({
        type: "targets",
        targets: Object.fromEntries(Object.entries(next).map(([k, v]) => [k, v.url])),
      });
    }
  }
  s.offered = { ...s.offered, [m.from]: m.register };
  judge(m.register, `offered by ${m.from}`);
  if (
    m.follow &&
    followRegister(s.voter, m.follow, now.mono, {
      backends: backends(),
      settleMs: s.config.timers.settleMs,
    })
  ) take(m.follow.register, `${m.from} reports it as the group's`);
  if (m.kind === "request" && m.request) {
    s.addressedAs = s.addressedAs[m.from] === m.to
      ? s.addressedAs
      : { ...s.addressedAs, [m.from]: m.to };
    const request = leaseRequestOf(m, m.request);
    const answered = answerRequest(s.voter, request, now.mono, {
      timers: s.config.timers,
      digest: null,
    });
    if (answered) {
      s.voter = answered.state;
      fx.push({ type: "send", message: reply(s, m.to, request, answered.answer) });
    }
  }
  return { state: s, effects: answerWaiters(s, now, fx) };
}

/** Requests refused only until the old node's last holder released it are granted now. */
function answerWaiters(s: WitnessState, now: Clock, fx: WitnessEffect[]): WitnessEffect[] {
  const done = answerWaiting(s.voter, now.mono, { timers: s.config.timers, digest: null });
  s.voter = done.state;
  for (const { request, answer } of done.answers) {
    const name = s.addressedAs[request.holder] ?? s.config.name;
    if (name !== null) fx.push({ type: "send", message: reply(s, name, request, answer) });
  }
  return fx;
}

/** A voter's answer to `request`, from the name its holder addresses us by. */
function reply(
  s: WitnessState,
  from: string,
  request: LeaseRequest,
  answer: GrantAnswer,
): AgreementMessage {
  return {
    kind: "reply",
    from,
    to: request.holder,
    incarnation: s.incarnation,
    digest: request.digest,
    register: s.voter.register,
    epochSeen: s.voter.register.epoch,
    view: s.view,
    serving: null,
    grant: { t: request.t, incarnation: request.incarnation, ...answer },
  };
}
