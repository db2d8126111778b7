import { describe, expect, test } from "bun:test";
import { type Candidate, chooseActive, failoverCandidate } from "../../src/core/select_active.ts";

const node = (
  name: string,
  healthy: boolean,
  index: number | null,
  maintenance = false,
): Candidate => ({
  name,
  healthy,
  wsrepLocalIndex: index,
  maintenance,
});

describe("chooseActive()", () => {
  test("picks the healthy node with the lowest wsrep_local_index at start", () => {
    const d = chooseActive(
      [node("db0", true, 2), node("db1", true, 0), node("db2", true, 1)],
      null,
    );
    expect(d).toMatchObject({ active: "db1", changed: true });
    expect(d.reason).toContain("lowest wsrep_local_index 0");
  });

  test("keeps the active node while it is healthy, even when another has a lower index", () => {
    const d = chooseActive([node("db0", true, 0), node("db1", true, 1)], "db1");
    expect(d).toEqual({ active: "db1", changed: false, reason: "db1 is healthy" });
  });

  test("a recovered node does not take traffic back", () => {
    let active = chooseActive([node("a", true, 0), node("b", true, 1)], null).active;
    active = chooseActive([node("a", false, 0), node("b", true, 1)], active).active;
    expect(active).toBe("b");
    const d = chooseActive([node("a", true, 0), node("b", true, 1)], active);
    expect(d).toMatchObject({ active: "b", changed: false });
  });

  test("fails over to the lowest index among healthy nodes when the active one is unhealthy", () => {
    const d = chooseActive(
      [node("db0", false, 0), node("db1", true, 2), node("db2", true, 1)],
      "db0",
    );
    expect(d.active).toBe("db2");
    expect(d.changed).toBe(true);
    expect(d.reason).toStartWith("db0 is unhealthy");
  });

  test("breaks equal indexes by name", () => {
    expect(chooseActive([node("zeta", true, 1), node("alpha", true, 1)], null).active).toBe(
      "alpha",
    );
  });

  test("nodes without a reported index come after those with one, then by name", () => {
    expect(chooseActive([node("a", true, null), node("b", true, 5)], null).active).toBe("b");
    expect(chooseActive([node("c", true, null), node("b", true, null)], null).active).toBe("b");
  });

  test("no healthy node leaves no active node and says so", () => {
    const d = chooseActive([node("db0", false, 0), node("db1", false, 1)], "db0");
    expect(d).toMatchObject({ active: null, changed: true });
    expect(d.reason).toContain("no healthy node left");
    expect(chooseActive([node("db0", false, 0)], null)).toMatchObject({
      active: null,
      changed: false,
    });
  });

  test("a node in maintenance is left and never chosen", () => {
    const d = chooseActive([node("db0", true, 0, true), node("db1", true, 1)], "db0");
    expect(d).toMatchObject({ active: "db1", changed: true });
    expect(d.reason).toStartWith("db0 is in maintenance");
    expect(failoverCandidate([node("db0", true, 0, true)])).toBeUndefined();
  });

  test("an active node removed from the set is replaced", () => {
    const d = chooseActive([node("db1", true, 1)], "db0");
    expect(d).toMatchObject({ active: "db1", changed: true });
    expect(d.reason).toStartWith("db0 was removed");
  });
});
