/**
 * p4: a proxy that does not vote, in a tier of five (p1, p2 and p3 vote), fed one event at a
 * time; and the messages the others send it.
 */
import {
  type AgreementEffect,
  type AgreementState,
  startAgreement,
  step,
} from "../../src/core/agreement.ts";
import type { AgreementMessage } from "../../src/core/agreement_message.ts";
import type { HealthView } from "../../src/core/health_view.ts";
import type { Register } from "../../src/core/register.ts";
import { voterDigest } from "../../src/core/voter_set.ts";

export const VOTERS = ["p1", "p2", "p3"];
export const ALL = ["p1", "p2", "p3", "p4", "p5"];
export const TIMERS = {
  leaseMs: 2000,
  marginMs: 200,
  guardMs: 300,
  settleMs: 2000,
  startupHoldMs: 0,
};

/** p4 just started, knowing `backends`; `feed` steps it at `ms` and returns the effects. */
export function p4(backends: string[]) {
  let s: AgreementState = startAgreement({
    self: "p4",
    cluster: "c",
    mode: "proxies",
    voters: VOTERS,
    peers: ALL.filter((p) => p !== "p4"),
    backends,
    timers: TIMERS,
  }, { incarnation: "i-p4", now: { mono: 0, wall: 1.8e12 } });
  return (ms: number, event: Parameters<typeof step>[1]): AgreementEffect[] => {
    const out = step(s, event, { mono: ms, wall: 1.8e12 + ms });
    s = out.state;
    return out.effects;
  };
}

/** The stamp of each request among `effects`, by the voter it asks. */
export function requestsIn(effects: AgreementEffect[]): Record<string, number> {
  const asked: Record<string, number> = {};
  for (const e of effects) {
    if (e.type === "send" && e.message.request) asked[e.message.to] = e.message.request.t;
  }
  return asked;
}

/** News from `from` to p4, holding `register` and seeing `view` (`extra`: any other field). */
export function newsFrom(
  from: string,
  register: Register,
  view: HealthView,
  extra: Partial<AgreementMessage> = {},
) {
  return {
    type: "message" as const,
    message: {
      kind: "state" as const,
      from,
      to: "p4",
      incarnation: `i-${from}`,
      digest: voterDigest("proxies", VOTERS),
      register,
      epochSeen: register.epoch,
      view,
      serving: null,
      ...extra,
    } as AgreementMessage,
  };
}
