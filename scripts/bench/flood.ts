/**
 * A datagram flood at one proxy of a 3-proxy tier: a separate process (flooder.ts) sends garbage
 * (with the peer magic, so it is not dropped at the first byte) to p1's peer port at `--rate`
 * datagrams/s, from another port of a party's host (loopback). Meanwhile, every 50 ms: p1's
 * API (the main thread's latency), a new client session through p1 (connect and greeting), and
 * whether p1 still routes and still hears its peers. The same measurements without the flood are the baseline.
 *
 *   node_modules/.bin/bun scripts/bench/flood.ts [--seconds 10] [--rate 600000]
 *
 * Writes the "flood" section of docs/BENCHMARKS.md.
 */
import process from "node:process";
import { spawn } from "node:child_process";
import path from "node:path";
import { connectClient, startAgent, startBackend } from "../lab/fixtures.ts";
import { Tier } from "../lab/tier.ts";
import { udpReceiveBufferErrors } from "./kernel_counters.ts";
import { benchOptions, type Cleanup, fmt, machine, runBench, writeSection } from "./report.ts";

const OPTIONS = benchOptions("flood.ts [--seconds 10] [--rate 600000]", {
  seconds: { fallback: 10, min: 1 },
  rate: { fallback: 600_000, min: 1 },
});
const PROXIES = ["p1", "p2", "p3"];

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

async function sample(tier: Tier, seconds: number) {
  const api: number[] = [];
  const ready: number[] = [];
  const conn: number[] = [];
  let notReady = 0;
  let notRouting = 0;
  let peersDown = 0;
  let samples = 0;
  const until = performance.now() + seconds * 1000;
  while (performance.now() < until) {
    const t0 = performance.now();
    const cluster = await tier.cluster("p1").catch(() => null);
    api.push(performance.now() - t0);
    const tr = performance.now();
    const r = await fetch(`http://127.0.0.1:${tier.member("p1").healthPort}/ready`).catch(() =>
      null
    );
    await r?.arrayBuffer();
    ready.push(performance.now() - tr);
    if (r?.status !== 200) notReady++;
    const t1 = performance.now();
    const c = await connectClient(tier.member("p1").clientPort).catch(() => null);
    if (c) {
      // Timed on the data event itself (Client.waitFor polls every 25 ms).
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 5000);
        const check = () => c.received.includes("hello") && (clearTimeout(timer), resolve());
        c.socket.on("data", check);
        check();
      });
      conn.push(performance.now() - t1);
      c.socket.destroy();
    }
    const peers = await tier.api("p1", "/v0/peers").catch(() => null);
    samples++;
    if (cluster?.activeBackend !== "db0") notRouting++;
    if (peers && peers.peers.some((p: { live: boolean }) => !p.live)) peersDown++;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { api, ready, conn, notRouting, notReady, peersDown, samples };
}

async function main(cleanup: Cleanup) {
  const backends = await Promise.all(["db0", "db1", "db2"].map((b) => startBackend(b)));
  const agents = await Promise.all([0, 1, 2].map((i) => startAgent({ healthy: true, index: i })));
  cleanup.add(async () => {
    for (const x of [...backends, ...agents]) await x.close();
  });
  const tier = await Tier.create({
    names: PROXIES,
    backendsFor: () =>
      backends.map((b, i) => `${b.name}=127.0.0.1:${b.port},health=${agents[i].url}`),
  });
  cleanup.add(() => tier.stopAll());
  await tier.startAll();
  await tier.converged("db0");
  const quiet = await sample(tier, Math.min(5, OPTIONS.seconds));
  // The flooder: its own process, so the proxy's main thread competes only for the CPU.
  const flooder = spawn(process.execPath, [
    path.join(import.meta.dir, "flooder.ts"),
    "--port",
    String(tier.member("p1").peerPort),
    "--ms",
    String(OPTIONS.seconds * 1000 + 500),
    "--rate",
    String(OPTIONS.rate),
  ], { stdio: ["ignore", "pipe", "inherit"] });
  cleanup.add(() => flooder.kill("SIGKILL"));
  const flooderExited = new Promise((r) => flooder.once("exit", r));
  let sentText = "";
  flooder.stdout!.on("data", (d) => (sentText += d));
  const before = (await tier.api("p1", "/v0/peers")).gossip.dropped;
  const kernelBefore = udpReceiveBufferErrors();
  await new Promise((r) => setTimeout(r, 500));
  const flood = await sample(tier, OPTIONS.seconds);
  await flooderExited;
  const after = (await tier.api("p1", "/v0/peers")).gossip.dropped;
  const bufferFull = udpReceiveBufferErrors() - kernelBefore;
  const sent = Number(sentText.trim());
  const delta = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
  const inKernel = delta("kernel");
  const read = Object.keys(after).reduce((a, k) => a + (k === "kernel" ? 0 : delta(k)), 0);
  const ms = (xs: number[]) =>
    `${fmt(pct(xs, 50), 1)} / ${fmt(pct(xs, 99), 1)} / ${fmt(Math.max(...xs), 1)}`;
  const row = (name: string, s: Awaited<ReturnType<typeof sample>>) =>
    `| ${name} | ${ms(s.api)} | ${ms(s.ready)} (${s.notReady} not 200) | ${
      ms(s.conn)
    } | ${s.notRouting} / ${s.samples} | ${s.peersDown} |`;
  const table = [
    row("no flood", quiet),
    row(`flood (${fmt(sent / (OPTIONS.seconds + 0.5) / 1000)}k datagrams/s sent)`, flood),
  ];
  console.log(table.join("\n"));
  writeSection(
    "flood",
    `
## A datagram flood at one proxy

\`node_modules/.bin/bun scripts/bench/flood.ts --seconds ${OPTIONS.seconds}\` — ${
      new Date().toISOString().slice(0, 10)
    }; ${machine()}.

Three proxies with peers on loopback (test backends and agents). A separate process
(scripts/bench/flooder.ts, sendmmsg in batches) sends 200-byte datagrams with the peer magic at
${OPTIONS.rate}/s to p1's peer port from another port of a party's host (loopback), which p1's
filters let through at first, as they would a party behind a NAT. Of ${sent} sent, p1 read and refused ${read} (its shared budget for other ports, until
that budget's refusals made it tighten the kernel's source filter to parties' own addresses) and
the kernel dropped ${inKernel} for p1's socket, never read (of which the machine counted
${bufferFull} as a full receive buffer, \`RcvbufErrors\`, the rest the filter). Every 50 ms: p1's \`/v0/cluster\`
(the main thread's latency), its \`/ready\`, a new client session through p1 (connect and greeting), whether p1
routes, and whether it sees a peer down. Milliseconds, p50 / p99 / max. Target: no false peer-down,
no sample without a route, and the API and new connections within 100 ms under the flood.

| phase | API ms | /ready ms | new session ms | samples not routing | samples with a peer down |
| --- | --- | --- | --- | --- | --- |
${table.join("\n")}

p1's drop counters over the flood: ${
      Object.entries(after).map(([k, v]) => `${k} ${(v as number) - (before[k] ?? 0)}`).filter((
        x,
      ) => !x.endsWith(" 0")).join(", ")
    }.
`,
  );
}

await runBench(main);
