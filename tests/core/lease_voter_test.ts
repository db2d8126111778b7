import { describe, expect, test } from "bun:test";
import {
  answerRequest,
  answerWaiting,
  type LeaseRequest,
  type VoterState,
} from "../../src/core/lease_voter.ts";
import { emptyRegister, type Register } from "../../src/core/register.ts";

const timers = { leaseMs: 2000, marginMs: 200, guardMs: 300 };
const options = { timers, digest: "d" };
const on = (active: string): Register => ({
  ...emptyRegister("c"),
  epoch: active === "db0" ? 1 : 2,
  proposer: "p1",
  incarnation: "i1",
  active,
});
const ask = (holder: string, t: number, serving: string | null): LeaseRequest => ({
  holder,
  incarnation: `${holder}-life`,
  t,
  lease: 2000,
  serving,
  digest: "d",
});

/** A voter that granted db0 to h1 and h2, then moved to db1 (a failover). */
function handover(): VoterState {
  let v: VoterState = { register: on("db0"), since: 0, quietUntil: 0, records: [] };
  v = answerRequest(v, ask("h1", 1, null), 10, options)!.state;
  v = answerRequest(v, ask("h2", 1, null), 10, options)!.state;
  return { ...v, register: on("db1") };
}

describe("answerWaiting: a handover's grants go out on the last release", () => {
  test("a holder refused only while another holds the old node is granted once it releases", () => {
    let v = handover();
    const h1 = answerRequest(v, ask("h1", 2, null), 20, options)!;
    expect(h1.answer).toMatchObject({ node: null, wait: true });
    v = h1.state;
    // Nothing to grant while h2 still holds db0.
    expect(answerWaiting(v, 25, options).answers).toEqual([]);
    // h2 releases: its own request is granted at once, and h1's waiting one with it.
    const h2 = answerRequest(v, ask("h2", 2, null), 30, options)!;
    expect(h2.answer.node).toBe("db1");
    const late = answerWaiting(h2.state, 30, options);
    expect(late.answers.map((a) => [a.request.holder, a.request.t, a.answer.node])).toEqual([
      ["h1", 2, "db1"],
    ]);
    // Its record runs from now, not from when it asked: never shorter than a direct answer.
    const record = late.state.records.find((r) => r.holder === "h1")!;
    expect(record).toMatchObject({ node: "db1", expires: 30 + 2000 + 200 });
    expect(record.waiting).toBeUndefined();
    // Granted once: nothing waits any more.
    expect(answerWaiting(late.state, 31, options).answers).toEqual([]);
  });

  test("a waiting request whose holder asked again is answered as the newer one, once", () => {
    let v = handover();
    v = answerRequest(v, ask("h1", 2, null), 20, options)!.state;
    v = answerRequest(v, ask("h1", 3, null), 21, options)!.state;
    v = answerRequest(v, ask("h2", 2, null), 30, options)!.state;
    expect(answerWaiting(v, 30, options).answers.map((a) => a.request.t)).toEqual([3]);
  });

  test("an expired wait is not answered, nor one while the register names no node", () => {
    let v = handover();
    v = answerRequest(v, ask("h1", 2, null), 20, options)!.state;
    // The old holder's record runs out instead of being released: past h1's own record too.
    expect(answerWaiting(v, 20 + 2200, options).answers).toEqual([]);
    // The register loses its node: nobody waiting can be granted; the holders ask again.
    const none = { ...v, register: { ...v.register, active: null } };
    expect(answerWaiting(none, 30, options).answers).toEqual([]);
  });

  test("a replayed wait refusal or a replayed request never answers twice", () => {
    let v = handover();
    v = answerRequest(v, ask("h1", 2, null), 20, options)!.state;
    v = answerRequest(v, ask("h2", 2, null), 30, options)!.state;
    v = answerWaiting(v, 30, options).state;
    expect(answerRequest(v, ask("h1", 2, null), 31, options)).toBeNull();
  });
});

describe("a holder that sees the voter's node down", () => {
  const seeing = (request: LeaseRequest, view: LeaseRequest["view"]): LeaseRequest => ({
    ...request,
    view,
  });
  const down = { db0: { healthy: false, index: 0 }, db1: { healthy: true, index: 1 } };

  test("is refused rather than granted a node it would not serve, and holds nothing up", () => {
    // A voter still on db0 in a failover: h1 has released db0 and sees it down.
    let v: VoterState = { register: on("db0"), since: 0, quietUntil: 0, records: [] };
    const h1 = answerRequest(v, seeing(ask("h1", 1, null), down), 10, options)!;
    expect(h1.answer).toMatchObject({ node: null, why: "h1 sees db0 down" });
    expect(h1.answer.wait).toBeUndefined();
    v = h1.state;
    expect(v.records.find((r) => r.holder === "h1")?.node).toBeNull();
    // The voter moves to db1: h2 is granted it at once, with no wait on h1.
    v = { ...v, register: on("db1") };
    const h2 = answerRequest(v, seeing(ask("h2", 1, null), down), 20, options)!;
    expect(h2.answer.node).toBe("db1");
    // Without a view (an agent's holders), the old rule: db0 granted, and it holds db1 up.
    let w: VoterState = { register: on("db0"), since: 0, quietUntil: 0, records: [] };
    w = answerRequest(w, ask("h1", 1, null), 10, options)!.state;
    w = { ...w, register: on("db1") };
    expect(answerRequest(w, ask("h2", 1, null), 20, options)!.answer).toMatchObject({
      node: null,
      wait: true,
    });
  });

  test("a holder still serving the node is renewed: only a release is refused for its view", () => {
    const v: VoterState = { register: on("db0"), since: 0, quietUntil: 0, records: [] };
    const serving = answerRequest(v, seeing(ask("h1", 1, "db0"), down), 10, options)!;
    expect(serving.answer.node).toBe("db0");
    const healthy = { db0: { healthy: true, index: 0 } };
    expect(answerRequest(v, seeing(ask("h1", 1, null), healthy), 10, options)!.answer.node)
      .toBe("db0");
  });
});
