/**
 * Convergence of a register change across 3 and 7 proxies on loopback.
 *
 *   node_modules/.bin/bun scripts/bench/convergence.ts [--changes 20]
 *
 * A strict majority of the proxies is made to see the active test backend down (through their
 * own test agents); the rest learn the change by gossip. Measured from each proxy's own log
 * timestamps: first adoption of the new register anywhere → its adoption on the last proxy.
 * The baseline in the same run is the gossip interval (200 ms): what pure anti-entropy, without
 * the push on change, would need at best.
 */
import { startAgent, startBackend, type TestAgent, waitFor } from "../lab/fixtures.ts";
import { Tier } from "../lab/tier.ts";
import { benchOptions, fmt, machine, summary, writeSection } from "./report.ts";

const { changes } = benchOptions("convergence.ts [--changes 20]", {
  changes: { fallback: 20, min: 1 },
});
const BACKENDS = ["db0", "db1"];
const GOSSIP_MS = 200;

async function measure(size: number) {
  const names = Array.from({ length: size }, (_, i) => `p${i + 1}`);
  const backends = await Promise.all(BACKENDS.map((b) => startBackend(b)));
  const agents: Record<string, Record<string, TestAgent>> = {};
  for (const p of names) {
    agents[p] = {};
    for (const [i, b] of BACKENDS.entries()) {
      agents[p][b] = await startAgent({ healthy: true, index: i });
    }
  }
  const tier = await Tier.create({
    names,
    backendsFor: (p) =>
      BACKENDS.map((b, i) => `${b}=127.0.0.1:${backends[i].port},health=${agents[p][b].url}`),
    extra: [
      "--gossip-interval",
      `${GOSSIP_MS}ms`,
      "--lease",
      "2s",
      "--interval",
      "50ms",
      "--rise",
      "1",
      "--fall",
      "1",
      "--log-level",
      "info",
    ],
  });
  const samples: number[] = [];
  try {
    await tier.startAll();
    let active = (await tier.converged(undefined, 20_000)).active!;
    const majority = names.slice(0, Math.floor(size / 2) + 1);
    for (let c = 0; c < changes; c++) {
      const target = active === "db0" ? "db1" : "db0";
      const before = (await tier.registers()).p1.epoch;
      const started = Date.now();
      for (const p of majority) agents[p][active].set({ healthy: false });
      const reg = await tier.converged(target, 10_000);
      await waitFor("every proxy routing to the new node", async () => {
        for (const m of tier.members.values()) {
          if ((await tier.cluster(m.name)).activeBackend !== target) return false;
        }
        return true;
      }, 10_000);
      // When each proxy started routing to the new node, from its own log (@timestamp in ms).
      const times: number[] = [];
      for (const m of tier.members.values()) {
        const line = m.daemon!.logs().find((l) => {
          const p = l.properties as Record<string, unknown> | undefined;
          return p?.active === target && "previous" in (p ?? {}) && "reason" in (p ?? {}) &&
            !("epoch" in (p ?? {})) && Date.parse(String(l["@timestamp"])) >= started - 5;
        });
        if (!line) throw new Error(`${m.name} has no log line routing to ${target}`);
        times.push(Date.parse(String(line["@timestamp"])));
      }
      if (reg.epoch <= before) throw new Error("no new register");
      samples.push(Math.max(...times) - Math.min(...times));
      for (const p of majority) agents[p][active].set({ healthy: true });
      await waitFor("views healthy again", async () => {
        const list = await tier.api("p1", "/v0/backends");
        return list.every((b: { healthy: boolean }) => b.healthy);
      });
      active = target;
    }
  } finally {
    await tier.stopAll();
    for (const b of backends) await b.close();
    for (const p of names) for (const b of BACKENDS) await agents[p][b].close();
  }
  return summary(samples);
}

const results: [number, ReturnType<typeof summary>][] = [];
for (const size of [3, 7]) {
  const s = await measure(size);
  results.push([size, s]);
  console.log(
    `${size} proxies: median ${fmt(s.median)} ms, min ${fmt(s.min)}, max ${fmt(s.max)} (n=${s.n})`,
  );
}
const rows = results.map(([size, s]) =>
  `| ${size} | ${fmt(s.median)} | ${fmt(s.min)} | ${fmt(s.max)} | ${s.n} | ${
    fmt(s.median / GOSSIP_MS, 2)
  }× |`
);
writeSection(
  "convergence",
  `
## Peers: convergence of a register change

\`node_modules/.bin/bun scripts/bench/convergence.ts\` — ${
    new Date().toISOString().slice(0, 10)
  }; ${machine()}.

A strict majority of the proxies (\`--quorum proxies\`, the proxies voting) sees the active test
backend fail; the others follow the majority's vote. Time from the first proxy routing to the
new node to the last one routing to it — each only once its lease on the new node is granted by
a majority and every lease on the old node is released after a confirmed sever — from each
proxy's own log timestamps (ms resolution). Target: ≤ 100 ms median. Baseline in the same run:
the gossip interval (${GOSSIP_MS} ms), the best case of anti-entropy alone.

| proxies | median ms | min | max | changes | median / gossip interval |
| --- | --- | --- | --- | --- | --- |
${rows.join("\n")}
`,
);
process.exit(0);
