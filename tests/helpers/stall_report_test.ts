import { describe, expect, test } from "bun:test";
import type { Lab } from "../../scripts/lab/lab.ts";
import type { Tier } from "../../scripts/lab/tier.ts";
import type { ClientStats } from "./lab_clients.ts";
import { waitForOk } from "./stall_report.ts";

/** node0 answers, node1 is down (its client fails), node2 never answers. */
const lab = {
  nodes: 3,
  status: (i: number, name: string) =>
    i === 0
      ? Promise.resolve(name === "wsrep_cluster_status" ? "Primary" : "Synced")
      : i === 1
      ? Promise.resolve(null)
      : new Promise<string | null>(() => {}),
} as unknown as Lab;

const tier = {
  members: new Map([
    ["p1", { name: "p1", daemon: {} }],
    ["p2", { name: "p2", daemon: {} }],
    ["p3", { name: "p3", daemon: null }],
  ]),
  cluster: (name: string) =>
    name === "p1"
      ? Promise.resolve({ activeBackend: "node0", activeReason: "lease granted" })
      : Promise.reject(new Error("refused")),
} as unknown as Tier;

describe("waitForOk", () => {
  test("resolves once the clients get past the mark", async () => {
    const stats: ClientStats = { ok: 5, deadlocks: 0, otherErrors: 0, stalled: 0, lastOkAt: 0 };
    setTimeout(() => (stats.ok = 11), 50);
    await waitForOk("writes", stats, 10, 2000, lab, tier);
  });

  test(
    "a timeout names the clients' counts, each node's state and each proxy's route",
    async () => {
      const stats: ClientStats = {
        ok: 7,
        deadlocks: 1,
        otherErrors: 4,
        stalled: 2,
        lastOkAt: Date.now() - 1000,
      };
      const error = await waitForOk("writes after the failover", stats, 100, 100, lab, tier).then(
        () => null,
        (e: Error) => e,
      );
      expect(error?.message).toMatch(
        /^timed out after 100ms waiting for writes after the failover; /,
      );
      expect(error?.message).toMatch(
        /clients: ok 7, 1213 1, other 4, stalled 2, last ok \d+ ms ago/,
      );
      expect(error?.message).toContain(
        "node0 Synced/Primary, node1 down/down, node2 no answer/no answer",
      );
      expect(error?.message).toContain("p1 → node0 (lease granted), p2 no answer");
      expect(error?.message).not.toContain("p3");
    },
    10_000,
  );
});
