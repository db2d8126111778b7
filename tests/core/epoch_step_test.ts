import { describe, expect, test } from "bun:test";
import { type AgreementState, type Clock, startAgreement, step } from "../../src/core/agreement.ts";
import { followRegister, judgeRegister, withinReach } from "../../src/core/lease_voter.ts";
import {
  emptyRegister,
  MAX_EPOCH,
  MAX_EPOCH_STEP,
  type Register,
} from "../../src/core/register.ts";
import { voterDigest } from "../../src/core/voter_set.ts";

const reg = (epoch: number, active: string, previous: string | null = null): Register => ({
  ...emptyRegister("c"),
  epoch,
  proposer: "p2",
  incarnation: "i2",
  active,
  previous,
  kind: previous ? "failover" : "initial",
  reason: "test",
});

describe("a key holder cannot use up the epoch space", () => {
  test("a voter refuses a proposal that jumps more than MAX_EPOCH_STEP past its register", () => {
    const view = { db0: { healthy: false, index: 0 }, db1: { healthy: true, index: 1 } };
    const current = reg(10, "db0");
    const options = { backends: ["db0", "db1"] };
    expect(judgeRegister(current, reg(10 + MAX_EPOCH_STEP, "db1", "db0"), view, options)).toBe(
      true,
    );
    expect(judgeRegister(current, reg(11 + MAX_EPOCH_STEP, "db1", "db0"), view, options)).toBe(
      false,
    );
    expect(judgeRegister(current, reg(MAX_EPOCH, "db1", "db0"), view, options)).toBe(false);
  });

  test("one message claiming epoch 2^40 raises what a proxy has seen by at most the step", () => {
    let t = 0;
    const now = (): Clock => ({ mono: t, wall: 1.8e12 + t });
    let s: AgreementState = startAgreement({
      self: "p1",
      cluster: "c",
      mode: "proxies",
      voters: ["p1", "p2", "p3"],
      peers: ["p2", "p3"],
      backends: ["db0", "db1"],
      timers: { leaseMs: 2000, marginMs: 200, guardMs: 300, settleMs: 2000, startupHoldMs: 0 },
    }, { incarnation: "i1", now: now() });
    t += 10;
    s = step(s, {
      type: "message",
      message: {
        kind: "state",
        from: "p2",
        to: "p1",
        incarnation: "i2",
        digest: voterDigest("proxies", ["p1", "p2", "p3"]),
        register: reg(MAX_EPOCH, "db1"),
        epochSeen: MAX_EPOCH,
        view: {},
        serving: null,
      },
    }, now()).state;
    expect(s.epochSeen).toBe(MAX_EPOCH_STEP);
    expect(s.voter!.register.epoch).toBe(0); // not taken as our vote either
  });

  test('a follow hint ("a majority holds this") is held to the same reach', () => {
    const state = { register: reg(10, "db0"), since: 0 } as Parameters<typeof followRegister>[0];
    const options = { backends: ["db0", "db1"], settleMs: 0 };
    expect(followRegister(state, { register: reg(900, "db1"), majority: true }, 1, options)).toBe(
      true,
    );
    expect(followRegister(state, { register: reg(MAX_EPOCH, "db1"), majority: true }, 1, options))
      .toBe(false);
  });

  test("a voter with nothing yet may rejoin a long-running tier, but not the end of the space", () => {
    expect(withinReach(0, 123_456)).toBe(true);
    expect(withinReach(0, MAX_EPOCH / 2 + 1)).toBe(false);
    expect(withinReach(5000, 6000)).toBe(true);
    expect(withinReach(5000, 6001)).toBe(false);
  });
});
