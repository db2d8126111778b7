/**
 * Convergence of a register change across 3, 7, 15 and 31 proxies (the compiled binary) on
 * loopback, and what the gossip costs each proxy while nothing changes: bytes and datagrams per
 * second each way, and CPU.
 *
 *   node_modules/.bin/bun scripts/bench/convergence.ts [--changes 20] [--smallest 3] [--largest 31]
 *
 * A strict majority of the proxies is made to see the active test backend down (through their
 * own test agents); the rest learn the change by gossip. Measured from each proxy's own log
 * timestamps: first adoption of the new register anywhere → its adoption on the last proxy.
 * The baseline in the same run is the gossip interval (200 ms): what pure anti-entropy, without
 * the push on change, would need at best.
 */
import process from "node:process";
import { execFileSync } from "node:child_process";
import { cpus } from "node:os";
import path from "node:path";
import { waitFor } from "../lab/fixtures.ts";
import { Tier, type TierMember } from "../lab/tier.ts";
import { TierNodes } from "../lab/tier_nodes.ts";
import { benchOptions, fmt, machine, median, ROOT, summary, writeSection } from "./report.ts";
import { cpuSeconds } from "./sysbench.ts";

const { changes, smallest, largest } = benchOptions(
  "convergence.ts [--changes 20] [--smallest 3] [--largest 31]",
  {
    changes: { fallback: 20, min: 1 },
    smallest: { fallback: 3, min: 3 },
    largest: { fallback: 31, min: 3 },
  },
);
const SIZES = [3, 7, 15, 31].filter((n) => n >= smallest && n <= largest);
const BIN = path.join(ROOT, "galerad");
/** How long the quiet tier is watched for the cost of its gossip. */
const QUIET_MS = 10_000;
const BACKENDS = ["db0", "db1"];
const GOSSIP_MS = 200;
/** Each proxy probes its own two agents; at 31 proxies on two cores, probes every 50 ms alone would fill them. */
const PROBE_MS = 200;

/** Every proxy votes (`voting` = size), or only the first `voting` (`--voters`). */
async function measure(size: number, voting: number) {
  const names = Array.from({ length: size }, (_, i) => `p${i + 1}`);
  const nodes = await TierNodes.start(BACKENDS, names);
  const tier = await Tier.create({
    names,
    command: [BIN],
    readyTimeoutMs: 60_000,
    backendsFor: (p) => nodes.backendsFor(p),
    extra: [
      "--gossip-interval",
      `${GOSSIP_MS}ms`,
      "--lease",
      "2s",
      "--interval",
      `${PROBE_MS}ms`,
      "--rise",
      "1",
      "--fall",
      "1",
      "--log-level",
      "info",
      ...(voting < size
        ? ["--quorum", "proxies", "--voters", names.slice(0, voting).join(",")]
        : []),
    ],
  });
  const samples: number[] = [];
  let cost: Awaited<ReturnType<typeof quietCost>> | null = null;
  try {
    await tier.startAll();
    let active = (await tier.converged(undefined, 60_000)).active!;
    cost = await quietCost(tier);
    const majority = names.slice(0, Math.floor(size / 2) + 1);
    for (let c = 0; c < changes; c++) {
      const target = active === "db0" ? "db1" : "db0";
      const before = (await tier.registers()).p1.epoch;
      // Only what each proxy logs from now on is read, and each one only until it is found.
      const offsets = new Map(
        [...tier.members.values()].map((m) => [m.name, m.daemon!.stderr.length]),
      );
      const found = new Map<string, number>();
      nodes.set(active, { healthy: false }, majority);
      // Waited for in the proxies' own logs: polling 31 APIs every few ms would load the very
      // cores the tier is measured on. The APIs are asked once it is over.
      const routedAt = (m: TierMember) => {
        if (found.has(m.name)) return found.get(m.name)!;
        for (const text of m.daemon!.stderr.slice(offsets.get(m.name)).split("\n")) {
          if (!text.startsWith("{") || !text.includes(target)) continue;
          const l = JSON.parse(text) as Record<string, unknown>;
          const p = l.properties as Record<string, unknown> | undefined;
          if (
            p?.active === target && "previous" in (p ?? {}) && "reason" in (p ?? {}) &&
            !("epoch" in (p ?? {}))
          ) {
            found.set(m.name, Date.parse(String(l["@timestamp"])));
            return found.get(m.name)!;
          }
        }
        return null;
      };
      const times = await waitFor("every proxy routing to the new node", () => {
        const all = [...tier.members.values()].map(routedAt);
        return all.every((t) => t !== null) ? (all as number[]) : null;
      }, 30_000);
      const reg = await tier.converged(target, 30_000);
      for (const m of tier.members.values()) {
        const routes = (await tier.cluster(m.name)).activeBackend;
        if (routes !== target) throw new Error(`${m.name} routes to ${routes}, not ${target}`);
      }
      if (reg.epoch <= before) throw new Error("no new register");
      samples.push(Math.max(...times) - Math.min(...times));
      nodes.set(active, { healthy: true }, majority);
      await waitFor("views healthy again", async () => {
        const list = await tier.api("p1", "/v0/backends");
        return list.every((b: { healthy: boolean }) => b.healthy);
      });
      active = target;
    }
  } finally {
    await tier.stopAll();
    await nodes.close();
  }
  return { ...summary(samples), cost: cost! };
}

/** Per proxy, over QUIET_MS of a tier where nothing changes: gossip bytes, datagrams, CPU. */
async function quietCost(tier: Tier) {
  const read = async () => {
    const out = new Map<
      string,
      { sent: number; received: number; bytesSent: number; bytesReceived: number; cpu: number }
    >();
    for (const m of tier.members.values()) {
      const gossip = (await tier.api(m.name, "/v0/peers")).gossip;
      out.set(m.name, { ...gossip, cpu: cpuSeconds(m.daemon!.child.pid) });
    }
    return out;
  };
  const before = await read();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, QUIET_MS));
  const after = await read();
  const seconds = (performance.now() - t0) / 1000;
  const per = (
    f: (
      a: { sent: number; received: number; bytesSent: number; bytesReceived: number; cpu: number },
    ) => number,
  ) => [...after].map(([name, a]) => (f(a) - f(before.get(name)!)) / seconds);
  const stat = (values: number[]) => ({ median: median(values), max: Math.max(...values) });
  return {
    bytesSent: stat(per((c) => c.bytesSent)),
    bytesReceived: stat(per((c) => c.bytesReceived)),
    sent: stat(per((c) => c.sent)),
    received: stat(per((c) => c.received)),
    cpuPercent: stat(per((c) => c.cpu * 100)),
  };
}

execFileSync("bash", [path.join(ROOT, "compile.sh")], { stdio: "inherit" });
/** Each size with every proxy voting, and the large ones again with VOTERS of them voting. */
const VOTERS = 5;
const runs = [
  ...SIZES.map((size) => ({ size, voting: size })),
  ...SIZES.filter((size) => size > 7).map((size) => ({ size, voting: VOTERS })),
];
const results: [{ size: number; voting: number }, Awaited<ReturnType<typeof measure>>][] = [];
for (const run of runs) {
  const s = await measure(run.size, run.voting);
  results.push([run, s]);
  console.log(
    `${run.size} proxies, ${run.voting} voting: median ${fmt(s.median)} ms, min ${
      fmt(s.min)
    }, max ${fmt(s.max)} (n=${s.n}); per proxy ${
      fmt(s.cost.bytesSent.median / 1024, 1)
    } KiB/s sent, ${fmt(s.cost.sent.median)} datagrams/s, CPU ${
      fmt(s.cost.cpuPercent.median, 1)
    } %`,
  );
}
const who = ({ size, voting }: { size: number; voting: number }) =>
  `${size} | ${voting === size ? "all" : voting}`;
const costRows = results.map(([run, { cost: c }]) =>
  `| ${who(run)} | ${fmt(c.bytesSent.median / 1024, 1)} (${fmt(c.bytesSent.max / 1024, 1)}) | ${
    fmt(c.bytesReceived.median / 1024, 1)
  } (${fmt(c.bytesReceived.max / 1024, 1)}) | ${fmt(c.sent.median)} | ${fmt(c.received.median)} | ${
    fmt(c.bytesSent.median / Math.max(1, c.sent.median))
  } | ${fmt(c.cpuPercent.median, 1)} (${fmt(c.cpuPercent.max, 1)}) | ${
    fmt((run.size * c.cpuPercent.median) / 100, 2)
  } of ${cpus().length} |`
);
const rows = results.map(([run, s]) =>
  `| ${who(run)} | ${fmt(s.median)} | ${fmt(s.min)} | ${fmt(s.max)} | ${s.n} | ${
    fmt(s.median / GOSSIP_MS, 2)
  }× |`
);
/** Whether the largest tier met the target, with a few voting and with all of them. */
const TARGET_MS = 100;
const top = Math.max(...SIZES);
const verdictOf = (voting: number) => {
  const found = results.find(([run]) => run.size === top && run.voting === voting);
  if (!found) return null;
  const { median: ms } = found[1];
  const who = voting === top ? `all ${top} voting` : `${voting} of ${top} voting`;
  return `${who}: ${ms <= TARGET_MS ? "met" : "not met"} (${fmt(ms)} ms)`;
};
const verdicts = top > 7 ? [verdictOf(VOTERS), verdictOf(top)].filter(Boolean) : [];
const verdict = verdicts.length === 0 ? "" : `
At ${top} proxies, against the target: ${verdicts.join("; ")}.
Past 7 proxies docs/peers.md recommends \`--voters\` naming 3, 5 or 7 of them, and a proxy warns
at start when more than 7 vote.
`;
writeSection(
  "convergence",
  `
## Peers: convergence of a register change

\`node_modules/.bin/bun scripts/bench/convergence.ts\` — ${
    new Date().toISOString().slice(0, 10)
  }; ${machine()}.

A strict majority of the proxies (\`--quorum proxies\`; every voter among them) sees the active
test backend fail; the others follow the majority's vote. Time from the first proxy routing to the
new node to the last one routing to it — each only once its lease on the new node is granted by
a majority of the voters and every lease on the old node is released after a confirmed sever —
from each proxy's own log timestamps (ms resolution); the tier's APIs are asked only once it is
over. Target: ≤ 100 ms median. Baseline in the same run: the gossip interval (${GOSSIP_MS} ms),
the best case of anti-entropy alone. "voting": every proxy, or \`--voters\` naming ${VOTERS} of them.

| proxies | voting | median ms | min | max | changes | median / gossip interval |
| --- | --- | --- | --- | --- | --- | --- |
${rows.join("\n")}
${verdict}
What the agreement costs each proxy while nothing changes, over ${
    QUIET_MS / 1000
  } s of a settled tier
(median over the proxies, the largest in brackets): the UDP payload sent and accepted
(\`galerad_gossip_bytes_*_total\`), datagrams per second, and CPU (all threads, with its own health
probes of two agents every ${PROBE_MS} ms, in % of one core). Each proxy asks each voter to renew
its lease every quarter lease (on the first ${GOSSIP_MS}-ms tick after it; on every tick while a
renewal is late) and each voter answers: with every proxy voting the tier's total grows with the
square of its size. A proxy that does not vote hears from each other proxy every quarter
lease (and at once on any change), so with a fixed number of voters the total grows linearly;
while nothing changes that news goes as "same", a hash of about 200 bytes (docs/peers.md,
compact news), and requests and replies whole.

| proxies | voting | KiB/s sent | KiB/s received | datagrams/s sent | datagrams/s received | bytes/datagram | CPU % | tier CPU, cores |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
${costRows.join("\n")}

The whole tier runs on this one machine (two cores). Where the tier's CPU nears them, every
proxy's ticks and answers queue behind the others', and the convergence times measure that
queueing as much as the protocol.
`,
);
process.exit(0);
