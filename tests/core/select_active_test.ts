import { describe, expect, test } from "bun:test";
import { decideGroup, type HealthView } from "../../src/core/group_decision.ts";
import { emptyRegister, type Register } from "../../src/core/register.ts";
import { compareCandidates } from "../../src/core/select_active.ts";

// A proxy without peers decides alone: the group rule over one view. These are the standalone
// selection rules (sticky, lowest index, no failback) seen through that.
const view = (spec: Record<string, [boolean, number | null]>): HealthView =>
  Object.fromEntries(Object.entries(spec).map(([k, [healthy, index]]) => [k, { healthy, index }]));
function decide(register: Register, v: HealthView) {
  return decideGroup({ self: "p", register, views: { p: v }, now: 0 });
}
const reg = (active: string | null, epoch = 1): Register => ({
  ...emptyRegister("c"),
  epoch,
  proposer: "p",
  active,
});

describe("standalone selection", () => {
  test("picks the healthy node with the lowest wsrep_local_index at start", () => {
    const d = decide(emptyRegister("c"), view({ db0: [true, 2], db1: [true, 0], db2: [true, 1] }));
    expect(d.route).toBe("db1");
    expect(d.reason).toContain("lowest wsrep_local_index 0");
  });

  test("keeps the active node while it is healthy, even when another has a lower index", () => {
    expect(decide(reg("db1"), view({ db0: [true, 0], db1: [true, 1] }))).toMatchObject({
      propose: null,
      route: "db1",
    });
  });

  test("fails over to the lowest index among healthy nodes; the recovered one does not take it back", () => {
    const d = decide(reg("db0"), view({ db0: [false, 0], db1: [true, 2], db2: [true, 1] }));
    expect(d.route).toBe("db2");
    expect(decide(d.propose!, view({ db0: [true, 0], db1: [true, 2], db2: [true, 1] })).route).toBe(
      "db2",
    );
  });

  test("breaks equal indexes by name; nodes without an index come last", () => {
    expect(decide(emptyRegister("c"), view({ zeta: [true, 1], alpha: [true, 1] })).route).toBe(
      "alpha",
    );
    expect(decide(emptyRegister("c"), view({ a: [true, null], b: [true, 5] })).route).toBe("b");
  });

  test("no healthy node leaves no active node and says so", () => {
    const d = decide(reg("db0"), view({ db0: [false, 0], db1: [false, 1] }));
    expect(d.route).toBeNull();
    expect(d.reason).toContain("no node is healthy");
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
