import { describe, expect, test } from "bun:test";
import {
  type AgreementState,
  type Clock,
  currentRegister,
  startAgreement,
  step,
  switchoverProblem,
} from "../../src/core/agreement.ts";
import { type HealthView, viewCandidate } from "../../src/core/health_view.ts";
import { compareCandidates, type Ranks } from "../../src/core/select_active.ts";

// A proxy without peers is its own only voter: the agreement reduces to the standalone sticky
// rule. These are the selection rules (sticky, lowest index, no failback) seen through it.
const view = (spec: Record<string, [boolean, number | null]>): HealthView =>
  Object.fromEntries(Object.entries(spec).map(([k, [healthy, index]]) => [k, { healthy, index }]));

function alone(backends: string[], ranks: Ranks = {}) {
  let t = 0;
  const now = (): Clock => ({ mono: t, wall: 1.8e12 + t });
  let state: AgreementState = startAgreement({
    self: "p",
    cluster: "c",
    mode: "proxies",
    voters: ["p"],
    peers: [],
    backends,
    ranks,
    timers: { leaseMs: 2000, marginMs: 200, guardMs: 300, settleMs: 2000, startupHoldMs: 0 },
  }, { incarnation: "i1", now: now() });
  const feed = (event: Parameters<typeof step>[1]) => {
    t += 10;
    const out = step(state, event, now());
    state = out.state;
    // The data plane confirms every sever at once.
    for (const e of out.effects) if (e.type === "sever") feed({ type: "severed", node: e.node });
  };
  return {
    see: (v: HealthView) => feed({ type: "view", view: v }),
    get route() {
      return state.route;
    },
    get register() {
      return currentRegister(state, now());
    },
    switchoverProblem: (target: string) => switchoverProblem(state, target, now()),
    leave: () => feed({ type: "leave" }),
    get state() {
      return state;
    },
  };
}

describe("standalone selection", () => {
  test("picks the healthy node with the lowest wsrep_local_index at start", () => {
    const p = alone(["db0", "db1", "db2"]);
    p.see(view({ db0: [true, 2], db1: [true, 0], db2: [true, 1] }));
    expect(p.route.node).toBe("db1");
    expect(p.register.reason).toContain("lowest wsrep_local_index 0");
  });

  test("keeps the active node while it is healthy, even when another has a lower index", () => {
    const p = alone(["db0", "db1"]);
    p.see(view({ db0: [false, 0], db1: [true, 1] }));
    expect(p.route.node).toBe("db1");
    p.see(view({ db0: [true, 0], db1: [true, 1] }));
    expect(p.route.node).toBe("db1");
  });

  test("fails over to the lowest index among healthy nodes; the recovered one does not take it back", () => {
    const p = alone(["db0", "db1", "db2"]);
    p.see(view({ db0: [true, 0], db1: [true, 2], db2: [true, 1] }));
    expect(p.route.node).toBe("db0");
    p.see(view({ db0: [false, 0], db1: [true, 2], db2: [true, 1] }));
    expect(p.route.node).toBe("db2");
    p.see(view({ db0: [true, 0], db1: [true, 2], db2: [true, 1] }));
    expect(p.route.node).toBe("db2");
  });

  test("no healthy node leaves no active node and says so", () => {
    const p = alone(["db0", "db1"]);
    p.see(view({ db0: [true, 0], db1: [false, 1] }));
    p.see(view({ db0: [false, 0], db1: [false, 1] }));
    expect(p.route.node).toBeNull();
    expect(p.route.reason).toContain("no healthy Galera node");
  });
});

describe("viewCandidate()", () => {
  test("breaks equal indexes by name; nodes without an index come last", () => {
    expect(viewCandidate(view({ zeta: [true, 1], alpha: [true, 1] }), null)?.name).toBe("alpha");
    expect(viewCandidate(view({ a: [true, null], b: [true, 5] }), null)?.name).toBe("b");
  });
  test("leaves out the excluded, drained and unhealthy nodes", () => {
    const v = view({ db0: [true, 0], db1: [true, 1], db2: [false, 2], db3: [true, 3] });
    expect(viewCandidate(v, "db0", ["db1"])?.name).toBe("db3");
    expect(viewCandidate(view({ db0: [false, 0] }), null)).toBeNull();
  });
});

describe("compareCandidates()", () => {
  test("orders by index, unknown last, then name", () => {
    const list = [
      { name: "c", wsrepLocalIndex: null },
      { name: "b", wsrepLocalIndex: 1 },
      { name: "a", wsrepLocalIndex: 1 },
      { name: "d", wsrepLocalIndex: 0 },
    ];
    expect(list.sort(compareCandidates).map((c) => c.name)).toEqual(["d", "a", "b", "c"]);
  });
});

describe("priorities and writer=false", () => {
  const ranks: Ranks = {
    db0: { priority: 2, writer: true },
    db1: { priority: 1, writer: true },
    db2: { priority: 1, writer: true },
    far: { priority: 0, writer: false },
  };
  test("priority first (lower first), then wsrep_local_index, then name", () => {
    const list = [
      { name: "a", wsrepLocalIndex: 0, priority: 5 },
      { name: "c", wsrepLocalIndex: 2, priority: 1 },
      { name: "b", wsrepLocalIndex: 2, priority: 1 },
      { name: "d", wsrepLocalIndex: 1, priority: 1 },
      { name: "e", wsrepLocalIndex: 0 },
    ];
    expect(list.sort(compareCandidates).map((c) => c.name)).toEqual(["e", "d", "b", "c", "a"]);
  });

  test("at start the best priority wins over a lower index; writer=false never", () => {
    const p = alone(["db0", "db1", "db2", "far"], ranks);
    p.see(view({ db0: [true, 0], db1: [true, 2], db2: [true, 3], far: [true, 1] }));
    expect(p.route.node).toBe("db1");
    expect(p.register.reason).toContain(
      "the lowest priority 1, then the lowest wsrep_local_index 2",
    );
  });

  test("on failover the next best priority, and a recovered better node does not take it back", () => {
    const p = alone(["db0", "db1", "db2", "far"], ranks);
    p.see(view({ db0: [true, 0], db1: [true, 1], db2: [true, 2], far: [true, 3] }));
    expect(p.route.node).toBe("db1");
    p.see(view({ db0: [true, 0], db1: [false, 1], db2: [true, 2], far: [true, 3] }));
    expect(p.route.node).toBe("db2");
    p.see(view({ db0: [true, 0], db1: [true, 1], db2: [true, 2], far: [true, 3] }));
    expect(p.route.node).toBe("db2");
    p.see(view({ db0: [true, 0], db1: [true, 1], db2: [false, 2], far: [true, 3] }));
    expect(p.route.node).toBe("db1");
  });

  test("a writer=false node is not the writer even as the only healthy node: refused, saying why", () => {
    const p = alone(["db0", "far"], ranks);
    p.see(view({ db0: [true, 0], far: [true, 1] }));
    expect(p.route.node).toBe("db0");
    p.see(view({ db0: [false, 0], far: [true, 1] }));
    expect(p.route.node).toBeNull();
    expect(p.route.reason).toBe(
      "no healthy Galera node may be the writer: far is writer=false; try again later",
    );
    expect(p.switchoverProblem("far")).toEqual({
      status: 409,
      message: "far is writer=false: it is never the active node",
    });
  });

  test("viewCandidate leaves writer=false nodes out and reports the priority it chose by", () => {
    const v = view({ db0: [true, 0], db1: [true, 1], far: [true, 2] });
    expect(viewCandidate(v, null, [], ranks)).toEqual({ name: "db1", index: 1, priority: 1 });
    expect(viewCandidate(view({ far: [true, 0] }), null, [], ranks)).toBeNull();
  });
});

describe("leaving", () => {
  test("a stopping proxy severs, releases its lease and never serves again", () => {
    const p = alone(["db0", "db1"]);
    p.see(view({ db0: [true, 0], db1: [true, 1] }));
    expect(p.route.node).toBe("db0");
    p.leave();
    expect(p.state.holder.serving).toBeNull();
    expect(p.route).toEqual({ node: null, hold: false, reason: "proxy is shutting down" });
    p.see(view({ db0: [false, 0], db1: [true, 1] }));
    expect(p.route.node).toBeNull();
    expect(p.register.active).toBe("db0"); // a stopping proxy proposes nothing
  });
});
