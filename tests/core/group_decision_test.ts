import { describe, expect, test } from "bun:test";
import { decideGroup, groupCandidate, type HealthView } from "../../src/core/group_decision.ts";
import {
  compareRegisters,
  emptyRegister,
  mergeRegisters,
  type Register,
} from "../../src/core/register.ts";

const reg = (epoch: number, proposer: string, active: string | null): Register => ({
  cluster: "c",
  epoch,
  proposer,
  active,
  reason: "",
  time: 0,
});
const view = (spec: Record<string, [boolean, number | null]>): HealthView =>
  Object.fromEntries(Object.entries(spec).map(([k, [healthy, index]]) => [k, { healthy, index }]));
const allUp = view({ db0: [true, 0], db1: [true, 1], db2: [true, 2] });
const db0Down = view({ db0: [false, 0], db1: [true, 1], db2: [true, 2] });

describe("register merge", () => {
  const samples = [
    reg(0, "", null),
    reg(1, "p1", "db0"),
    reg(1, "p2", "db1"),
    reg(2, "p1", "db2"),
    reg(3, "p0", null),
  ];
  test("is commutative, associative and idempotent", () => {
    for (const a of samples) {
      expect(mergeRegisters(a, a)).toEqual(a);
      for (const b of samples) {
        expect(mergeRegisters(a, b)).toEqual(mergeRegisters(b, a));
        for (const c of samples) {
          expect(mergeRegisters(mergeRegisters(a, b), c)).toEqual(
            mergeRegisters(a, mergeRegisters(b, c)),
          );
        }
      }
    }
  });
  test("orders by epoch, then proposer, never by time", () => {
    expect(mergeRegisters(reg(2, "a", "x"), reg(1, "z", "y")).active).toBe("x");
    expect(mergeRegisters(reg(1, "p1", "db0"), reg(1, "p2", "db1")).active).toBe("db1");
    const late = { ...reg(1, "a", "x"), time: 999 };
    expect(mergeRegisters(late, reg(1, "b", "y")).active).toBe("y");
    expect(compareRegisters(emptyRegister("c"), reg(1, "a", null))).toBe(-1);
  });
});

describe("decideGroup()", () => {
  test("a lone proxy (no peers) fails over like the standalone sticky rule", () => {
    const d = decideGroup({
      self: "p1",
      register: reg(4, "p1", "db0"),
      views: { p1: db0Down },
      now: 7,
    });
    expect(d.propose).toMatchObject({ epoch: 5, proposer: "p1", active: "db1", time: 7 });
    expect(d.route).toBe("db1");
    expect(d.reason).toContain(
      "db0 is down for 1 of 1 live proxies; db1 has the lowest wsrep_local_index 1",
    );
  });

  test("keeps the active node while it is healthy, whatever the indexes say", () => {
    const d = decideGroup({
      self: "p1",
      register: reg(4, "p2", "db2"),
      views: { p1: allUp, p2: allUp },
      now: 0,
    });
    expect(d).toMatchObject({ propose: null, route: "db2" });
  });

  test("a proxy alone in seeing the active node down does not move the group and refuses", () => {
    const d = decideGroup({
      self: "p1",
      register: reg(4, "p2", "db0"),
      views: { p1: db0Down, p2: allUp, p3: allUp },
      now: 0,
    });
    expect(d.propose).toBeNull();
    expect(d.route).toBeNull();
    expect(d.reason).toContain("sees db0 down but the group does not (1 of 3 live proxies)");
  });

  test("the others keep routing to the active node when one proxy alone sees it down", () => {
    const d = decideGroup({
      self: "p2",
      register: reg(4, "p2", "db0"),
      views: { p1: db0Down, p2: allUp, p3: allUp },
      now: 0,
    });
    expect(d).toMatchObject({ propose: null, route: "db0" });
  });

  test("a majority seeing it down moves the group to one deterministic candidate", () => {
    const views = { p1: db0Down, p2: db0Down, p3: allUp };
    const proposals = ["p1", "p2", "p3"].map((self) =>
      decideGroup({ self, register: reg(4, "p1", "db0"), views, now: 0 }).propose
    );
    for (const p of proposals) expect(p).toMatchObject({ epoch: 5, active: "db1" });
  });

  test("two of two is a majority; one of two is not", () => {
    const one = decideGroup({
      self: "p1",
      register: reg(1, "p1", "db0"),
      views: { p1: db0Down, p2: allUp },
      now: 0,
    });
    expect(one.propose).toBeNull();
    const two = decideGroup({
      self: "p1",
      register: reg(1, "p1", "db0"),
      views: { p1: db0Down, p2: db0Down },
      now: 0,
    });
    expect(two.propose?.active).toBe("db1");
  });

  test("a sole survivor whose peers are all gone can still fail over", () => {
    const d = decideGroup({
      self: "p3",
      register: reg(9, "p1", "db0"),
      views: { p3: db0Down },
      now: 0,
    });
    expect(d.propose).toMatchObject({ epoch: 10, proposer: "p3", active: "db1" });
  });

  test("with no active node yet, proposes the lowest index that a majority sees healthy", () => {
    const d = decideGroup({
      self: "p2",
      register: emptyRegister("c"),
      views: { p1: allUp, p2: allUp },
      now: 0,
    });
    expect(d.propose).toMatchObject({ epoch: 1, proposer: "p2", active: "db0" });
  });

  test("no fit node: proposes no active node once, then waits", () => {
    const none = view({ db0: [false, 0], db1: [false, 1] });
    const d = decideGroup({
      self: "p1",
      register: reg(3, "p1", "db0"),
      views: { p1: none },
      now: 0,
    });
    expect(d.propose).toMatchObject({ epoch: 4, active: null });
    const after = decideGroup({ self: "p1", register: d.propose!, views: { p1: none }, now: 0 });
    expect(after).toMatchObject({ propose: null, route: null });
  });

  test("the rejoined node does not take traffic back", () => {
    const d = decideGroup({
      self: "p1",
      register: reg(5, "p1", "db1"),
      views: { p1: allUp },
      now: 0,
    });
    expect(d).toMatchObject({ propose: null, route: "db1" });
  });

  test("drained backends are never chosen", () => {
    expect(groupCandidate({ p1: allUp }, null, new Set(["db0"]))?.name).toBe("db1");
  });

  test("a candidate needs a strict majority of live proxies to see it healthy", () => {
    const views = {
      p1: view({ db1: [true, 1], db2: [true, 2] }),
      p2: view({ db1: [false, 1], db2: [true, 2] }),
      p3: view({ db2: [true, 2] }),
    };
    expect(groupCandidate(views, null)?.name).toBe("db2");
  });
});
