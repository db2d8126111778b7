/**
 * Who proposes a failover: a proxy that sees the group's node down carries a proposal of the
 * same change that it heard from another proxy, rather than one of its own an epoch past it.
 */
import { describe, expect, test } from "bun:test";
import type { HealthView } from "../../src/core/health_view.ts";
import { emptyRegister, type Register } from "../../src/core/register.ts";
import { Sim } from "./agreement_sim.ts";
import { newsFrom, p4, TIMERS, VOTERS } from "./p4_fixture.ts";

const HEALTHY: HealthView = {
  db0: { healthy: true, index: 0 },
  db1: { healthy: true, index: 1 },
  db2: { healthy: true, index: 2 },
};
const DB0_DOWN: HealthView = { ...HEALTHY, db0: { healthy: false, index: 0 } };

function register(active: string, epoch: number, proposer: string, previous: string | null) {
  return {
    ...emptyRegister("c"),
    epoch,
    proposer,
    incarnation: `i-${proposer}`,
    active,
    previous,
    kind: "failover" as const,
  };
}

/** News from `from`, holding `held`. */
const news = (from: string, held: Register) => newsFrom(from, held, HEALTHY);

/** p4 (not voting) in a group on db0 at epoch 1; returns what it logs and sends per event. */
function proxy() {
  const step4 = p4(["db0", "db1", "db2"]);
  const feed = (ms: number, event: Parameters<typeof step4>[1]) => {
    const effects = step4(ms, event);
    return {
      logs: effects.flatMap((e) => e.type === "log" ? [e.message] : []),
      registers: effects.flatMap((e) => e.type === "send" ? [e.message.register] : []),
    };
  };
  feed(0, { type: "view", view: HEALTHY });
  for (const voter of VOTERS) feed(10, news(voter, register("db0", 1, "p1", null)));
  return feed;
}

describe("a proxy that sees a failure", () => {
  test("carries a proposal of the same change it heard, and tells it on", () => {
    const feed = proxy();
    const heard = register("db1", 2, "p5", "db0");
    feed(100, news("p5", heard));
    const seen = feed(150, { type: "view", view: DB0_DOWN });
    expect(seen.logs.filter((l) => l.startsWith("proposing"))).toEqual([]);
    // Its requests on the next tick carry p5's register, not one of its own at epoch 3.
    const { registers } = feed(300, { type: "tick" });
    expect(registers.length).toBeGreaterThan(0);
    expect(registers.every((r) => r.epoch === 2 && r.proposer === "p5")).toBe(true);
  });

  test("proposes its own when what it heard names another node", () => {
    const feed = proxy();
    feed(100, news("p5", register("db2", 2, "p5", "db0")));
    const seen = feed(150, { type: "view", view: DB0_DOWN });
    expect(seen.logs.filter((l) => l.startsWith("proposing"))).toEqual([
      expect.stringMatching(/^proposing epoch 3: db1 /),
    ]);
  });

  test("proposes its own when the proposal it heard is older than a lease", () => {
    const feed = proxy();
    feed(100, news("p5", register("db1", 2, "p5", "db0")));
    const later = 100 + TIMERS.leaseMs + 1;
    for (const voter of VOTERS) feed(later, news(voter, register("db0", 1, "p1", null)));
    const seen = feed(later, { type: "view", view: DB0_DOWN });
    expect(seen.logs.filter((l) => l.startsWith("proposing"))).toEqual([
      expect.stringMatching(/^proposing epoch 3: db1 /),
    ]);
  });
});

describe("proposals in a failover of a large tier with --voters", () => {
  test("the proxies that see the node fail make one proposal between them, not one each", () => {
    for (const seed of [1, 2, 3]) {
      const names = Array.from({ length: 31 }, (_, i) => `p${String(i).padStart(2, "0")}`);
      const sim = new Sim({ seed, proxies: names, mode: "proxies", voters: names.slice(0, 5) });
      sim.startAll();
      sim.run(6000);
      const active = Object.values(sim.routes())[0]!;
      const from = sim.timeline.length;
      sim.at(6000, "the active node fails", () => (sim.nodes[active].up = false));
      sim.run(7000);
      // Each outbidding the proposals it had heard made 14 to 18 of them, on 11 to 17 epochs.
      const proposals = sim.timeline.slice(from).filter((l) => l.includes("proposing epoch"));
      const routes = Object.values(sim.routes());
      expect({ seed, proposals: proposals.length <= 2, one: new Set(routes).size === 1 })
        .toEqual({ seed, proposals: true, one: true });
      expect(routes[0]).not.toBe(active);
      expect(sim.violations).toEqual([]);
    }
  });
});
