/**
 * The mission test: writers spread over three proxies update the same few rows on a real Galera
 * cluster through a kill -9 of the active node, its rejoin and a proxy restart. With peers there
 * must be no certification conflict (1213); the same run with peers off is the control.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync } from "node:fs";
import { waitFor } from "../../scripts/lab/fixtures.ts";
import { connect, type Lab, lab } from "../../scripts/lab/lab.ts";
import { type Daemon, startDaemon } from "../../scripts/lab/spawn.ts";
import { Tier } from "../../scripts/lab/tier.ts";
import { startClients, updateHotRow } from "../helpers/lab_clients.ts";
import { waitForOk } from "../helpers/stall_report.ts";

const L: Lab = lab({ dir: "/tmp/galerad-e2e-peers-lab", port: 25306, galeraPort: 26567 });
const AGENT_PORT = 29300;
const PROXIES = ["p1", "p2", "p3"];
const agents: Daemon[] = [];
const REPORT = process.env.GALERAD_PEERS_REPORT; // where the figures go, when set

beforeAll(async () => {
  await L.run("destroy");
  await L.run("up", "3");
  await L.sql(0, "CREATE TABLE lab.hot (id INT PRIMARY KEY, v BIGINT NOT NULL)");
  await L.sql(0, "INSERT INTO lab.hot VALUES (1, 0), (2, 0), (3, 0)");
  for (let i = 0; i < 3; i++) {
    agents.push(
      startDaemon([
        "healthcheck",
        "--listen",
        `127.0.0.1:${AGENT_PORT + i}`,
        "--mysql-socket",
        L.socket(i),
        "--interval",
        "200ms",
      ]),
    );
  }
  await waitFor("agents up", async () => {
    for (let i = 0; i < 3; i++) {
      if ((await fetch(`http://127.0.0.1:${AGENT_PORT + i}/`).catch(() => null))?.status !== 200) {
        return false;
      }
    }
    return true;
  }, 30_000);
}, 300_000);

afterAll(async () => {
  for (const a of agents) await a.stop();
  await L.run("destroy");
}, 120_000);

/** Writers, each on its own connection, round-robin over the proxies per connection. */
function startWriters(tier: Tier, count: number) {
  let next = 0;
  const ports = PROXIES.map((p) => tier.member(p).clientPort);
  return startClients({
    count,
    work: updateHotRow,
    reuse: 25,
    connect: () =>
      connect(ports[next++ % ports.length], { connectTimeout: 2000, database: undefined }),
  });
}

/** Polls every proxy's register; records when each first showed each active node. */
function watchRegisters(tier: Tier) {
  const seen: Record<string, Record<string, number>> = {};
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      await Promise.all(PROXIES.map(async (p) => {
        if (!tier.member(p).daemon) return;
        const c = await tier.cluster(p).catch(() => null);
        const active = c?.register?.active;
        if (!active) return;
        seen[active] ??= {};
        seen[active][p] ??= Date.now();
      }));
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  return {
    /** ms between the first and the last proxy naming `active`; null while one has not. */
    spread(active: string): number | null {
      const times = PROXIES.map((p) => seen[active]?.[p]);
      if (times.some((t) => t === undefined)) return null;
      return Math.max(...(times as number[])) - Math.min(...(times as number[]));
    },
    stop: async () => (stop = true, await loop),
  };
}

/** The node every proxy routes to, once they agree (by node, not by register version). */
function agreedNode(tier: Tier, not?: string): Promise<string> {
  return waitFor(`every proxy on one node${not ? ` other than ${not}` : ""}`, async () => {
    const actives = new Set(Object.values(await tier.registers()).map((r) => r.active));
    const [only] = actives;
    return actives.size === 1 && only && only !== not ? only : null;
  }, 30_000);
}

/** The scenario; returns the writers' figures and the convergence spreads. */
async function scenario(peers: boolean) {
  const tier = await Tier.create({
    names: PROXIES,
    peers,
    backendsFor: () =>
      [0, 1, 2].map((i) =>
        `node${i}=127.0.0.1:${L.port(i)},health=http://127.0.0.1:${AGENT_PORT + i}`
      ),
  });
  await tier.startAll();
  const watch = watchRegisters(tier);
  const writers = startWriters(tier, 6);
  const spreads: number[] = [];
  try {
    await waitForOk("writes flowing", writers.stats, 200, 30_000, L, tier);
    const first = await agreedNode(tier);
    const victim = Number(first.replace("node", ""));
    await L.run("kill", String(victim));
    let second: string;
    if (peers) {
      second = await agreedNode(tier, first);
      // A spread of 0 ms (all in one poll) is a result too, so wrap it: waitFor wants truthy.
      const spread = await waitFor("every proxy on the new node", () => {
        const ms = watch.spread(second);
        return ms === null ? null : { ms };
      }, 10_000);
      spreads.push(spread.ms);
    } else {
      // Proxies deciding alone need not agree: that is what the control shows.
      second = await waitFor("every proxy off the killed node", async () => {
        const actives = Object.values(await tier.registers()).map((r) => r.active);
        return actives.every((a) => a !== null && a !== first) ? actives[0] : null;
      }, 30_000) as string;
    }
    const okAtFailover = writers.stats.ok;
    await waitForOk(
      "writes after the failover",
      writers.stats,
      okAtFailover + 200,
      60_000,
      L,
      tier,
    );

    await L.run("start", String(victim));
    await new Promise((r) => setTimeout(r, 2000));

    await tier.stop("p2");
    tier.start("p2");
    await waitFor(
      "p2 back",
      async () => (await tier.cluster("p2").catch(() => null))?.ready,
      20_000,
    );
    const okAtRestart = writers.stats.ok;
    await waitForOk("writes after the restart", writers.stats, okAtRestart + 300, 60_000, L, tier);
    const registers = await tier.registers();
    return { stats: { ...writers.stats }, spreads, registers, second };
  } finally {
    await writers.stop();
    await watch.stop();
    await tier.stopAll();
  }
}

describe("peers on a real Galera cluster", () => {
  test(
    "writers through 3 proxies see no certification conflict through kill -9, rejoin and a proxy restart",
    async () => {
      const result = await scenario(true);
      if (REPORT) appendFileSync(REPORT, JSON.stringify({ peers: true, ...result }) + "\n");
      console.log(
        `with peers: ${result.stats.deadlocks} deadlocks in ${result.stats.ok} statements, failover spread ${
          result.spreads.join(", ")
        }ms`,
      );
      expect(result.stats.deadlocks).toBe(0);
      expect(result.stats.ok).toBeGreaterThan(500);
      for (const s of result.spreads) expect(s).toBeLessThanOrEqual(1000);
      expect(new Set(Object.values(result.registers).map((r) => r.active)).size).toBe(1);
      // The restarted proxy rejoined the group's node, not the rejoined node or "node 0".
      expect(result.registers.p2.active).toBe(result.second);
    },
    300_000,
  );

  test("control: the same run with peers off (each proxy decides alone)", async () => {
    const result = await scenario(false);
    if (REPORT) appendFileSync(REPORT, JSON.stringify({ peers: false, ...result }) + "\n");
    console.log(
      `control without peers: ${result.stats.deadlocks} deadlocks in ${result.stats.ok} statements`,
    );
    expect(result.stats.ok).toBeGreaterThan(500);
  }, 300_000);
});
