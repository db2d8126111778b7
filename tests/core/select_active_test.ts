import { describe, expect, test } from "bun:test";
import {
  type AgreementState,
  type Clock,
  currentRegister,
  startAgreement,
  step,
} from "../../src/core/agreement.ts";
import { type HealthView, viewCandidate } from "../../src/core/health_view.ts";
import { compareCandidates } from "../../src/core/select_active.ts";

// A proxy without peers is its own only voter: the agreement reduces to the standalone sticky
// rule. These are the selection rules (sticky, lowest index, no failback) seen through it.
const view = (spec: Record<string, [boolean, number | null]>): HealthView =>
  Object.fromEntries(Object.entries(spec).map(([k, [healthy, index]]) => [k, { healthy, index }]));

function alone(backends: string[]) {
  let t = 0;
  const now = (): Clock => ({ mono: t, wall: 1.8e12 + t });
  let state: AgreementState = startAgreement({
    self: "p",
    cluster: "c",
    mode: "proxies",
    voters: ["p"],
    peers: [],
    backends,
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
