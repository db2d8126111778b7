import { describe, expect, test } from "bun:test";
import { type NodeSurvey, planBootstrap } from "../../src/bootstrap/plan.ts";

const UUID = "c5a9ef72-e612-11f1-ab30-06a9bb16e43b";
const stopped = (name: string, seqno: number, safe = false, uuid = UUID): NodeSurvey => ({
  name,
  reachable: true,
  mysql: "stopped",
  uuid,
  seqno,
  safeToBootstrap: safe,
});
const synced = (name: string): NodeSurvey => ({
  name,
  reachable: true,
  mysql: "running",
  synced: true,
  primary: true,
});
const gone = (name: string): NodeSurvey => ({ name, reachable: false, error: "ECONNREFUSED" });

describe("planBootstrap()", () => {
  test("a running cluster: nothing to do, or join the stopped nodes", () => {
    expect(planBootstrap([synced("a"), synced("b")]).action).toBe("nothing");
    const p = planBootstrap([synced("b"), stopped("c", 5), stopped("a", 3)]);
    expect(p).toMatchObject({ action: "join", join: ["a", "c"] });
  });

  test("the node with safe_to_bootstrap: 1 wins", () => {
    const p = planBootstrap([stopped("a", 10), stopped("b", 10, true), stopped("c", 9)]);
    expect(p).toMatchObject({ action: "bootstrap", bootstrap: "b", join: ["a", "c"] });
  });

  test("otherwise the highest seqno", () => {
    const p = planBootstrap([stopped("a", 7), stopped("b", 12), stopped("c", 9)]);
    expect(p).toMatchObject({ action: "bootstrap", bootstrap: "b" });
    expect(p.reasons.at(-1)).toBe("b has the highest seqno 12");
  });

  test("ties are broken by name, deterministically, whatever the input order", () => {
    for (const order of [["c", "a", "b"], ["b", "c", "a"], ["a", "b", "c"]]) {
      const p = planBootstrap(order.map((n) => stopped(n, n === "a" ? 5 : 9)));
      expect(p).toMatchObject({ action: "bootstrap", bootstrap: "b", join: ["a", "c"] });
      expect(p.reasons.at(-1)).toBe("b, c share the highest seqno 9; b comes first by name");
    }
  });

  test("nodes from another cluster (different UUID) are refused, naming them", () => {
    const p = planBootstrap([
      stopped("a", 5),
      stopped("b", 6),
      stopped("x", 99, false, "11111111-2222-3333-4444-555555555555"),
    ]);
    expect(p.action).toBe("refuse");
    expect(p.reasons[0]).toBe(
      `nodes disagree on the cluster UUID: a, b have ${UUID}; x has 11111111-2222-3333-4444-555555555555`,
    );
  });

  test("an unreadable node blocks the plan unless forced", () => {
    const nodes = [stopped("a", 5), gone("b"), stopped("c", 4)];
    const p = planBootstrap(nodes);
    expect(p.action).toBe("refuse");
    expect(p.reasons[0]).toContain(
      "b cannot be read (ECONNREFUSED): it might hold the newest state",
    );
    expect(planBootstrap(nodes, { force: true })).toMatchObject({
      action: "bootstrap",
      bootstrap: "a",
      join: ["c"],
    });
  });

  test("a node without a sequence number blocks the plan unless forced", () => {
    const blind: NodeSurvey = {
      name: "b",
      reachable: true,
      mysql: "stopped",
      error: "wsrep-recover failed",
    };
    expect(planBootstrap([stopped("a", 1), blind]).action).toBe("refuse");
    expect(planBootstrap([stopped("a", 1), blind], { force: true })).toMatchObject({
      action: "bootstrap",
      bootstrap: "a",
      join: [],
    });
  });

  test("nodes running without a Primary component are refused", () => {
    const p = planBootstrap([{
      name: "a",
      reachable: true,
      mysql: "running",
      synced: false,
      primary: false,
    }, stopped("b", 3)]);
    expect(p.action).toBe("refuse");
    expect(p.reasons[0]).toContain("running without a Primary component");
  });

  test("safe_to_bootstrap outrun by a higher seqno is conflicting evidence", () => {
    const p = planBootstrap([stopped("a", 10, true), stopped("b", 12)]);
    expect(p.action).toBe("refuse");
    expect(p.reasons.at(-1)).toContain("conflicting evidence");
    expect(planBootstrap([stopped("a", 10, true), stopped("b", 12)], { force: true }))
      .toMatchObject({ bootstrap: "a" });
  });

  test("nodes that never joined (zero UUID) are not candidates", () => {
    const zero = "00000000-0000-0000-0000-000000000000";
    expect(planBootstrap([stopped("a", -1, false, zero), stopped("b", 3)])).toMatchObject({
      action: "bootstrap",
      bootstrap: "b",
      join: ["a"],
    });
    expect(planBootstrap([stopped("a", -1, false, zero)]).action).toBe("refuse");
  });
});
