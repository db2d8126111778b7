/**
 * Proxy cost on real MySQL traffic: sysbench through galerad (compiled Bun binary, and the same
 * source under Deno), through HAProxy 2.6 in the equivalent topology, and direct, side by side on
 * the local Galera lab; then idle-session memory, connection rate, bulk transfer and a memory soak.
 *
 *   node_modules/.bin/bun scripts/bench/throughput.ts [--rounds 3] [--seconds 10] [--soak 600]
 *
 * Targets run A B C D, A B C D, … so drift on this shared, noisy machine hits all alike. Medians
 * per target; ratios against HAProxy and direct measured in the same run. Writes
 * docs/BENCHMARKS.md.
 */
import { execFileSync } from "node:child_process";
import net from "node:net";
import { availableParallelism } from "node:os";
import path from "node:path";
import { waitFor } from "../lab/fixtures.ts";
import { lab, whichPort } from "../lab/lab.ts";
import { startDaemon } from "../lab/spawn.ts";
import {
  IDLE_SETTLE_MS,
  idleRss,
  idleText,
  slowReader,
  soak,
  soakLine,
  type Target,
} from "./memory.ts";
import { sysbench, sysbenchTarget } from "./sysbench.ts";
import { haproxyConfig, labServers, startHaproxy, startLocalAgents } from "./topology.ts";
import { bulk, connectionRate } from "./workloads.ts";
import {
  benchOptions,
  type Cleanup,
  fmt,
  machine,
  median,
  ROOT,
  roundOrder,
  runBench,
  writeSection,
} from "./report.ts";

const OPTIONS = benchOptions(
  "throughput.ts [--rounds 3] [--seconds 10] [--soak 600] [--soak-only]",
  {
    rounds: { fallback: 3, min: 1 },
    seconds: { fallback: 10, min: 1 },
    soak: { fallback: 0, min: 0 },
  },
  ["soak-only"],
);
const ROUNDS = OPTIONS.rounds;
const CPUS = availableParallelism();
const SECONDS = OPTIONS.seconds;
const SOAK = OPTIONS.soak;
const SOAK_ONLY = OPTIONS["soak-only"];
const BIN = path.join(ROOT, "galerad");
const DENO = path.join(ROOT, "node_modules/.bin/deno");
const L = lab({ dir: "/tmp/galerad-perf-lab", port: 20306, galeraPort: 21567 });
const AGENT = 19400;

/** The data-plane threads a galerad listening on `port` runs now (its API), or null. */
async function galeradThreads(port: number): Promise<number | null> {
  const answer = await fetch(`http://127.0.0.1:${port + 10}/v0/cluster`, {
    headers: { authorization: `Basic ${btoa("admin:bench-secret")}` },
  }).catch(() => null);
  if (!answer?.ok) return null;
  const { threads } = await answer.json() as { threads?: unknown };
  return typeof threads === "number" ? threads : null;
}

async function main(cleanup: Cleanup) {
  execFileSync("bash", [path.join(ROOT, "scripts/setup.sh")], { stdio: "inherit" });
  execFileSync("bash", [path.join(ROOT, "compile.sh")], { stdio: "inherit" });
  await L.run("destroy");
  cleanup.add(() => L.run("destroy"));
  await L.run("up", "3");
  // Proxies start once every agent answers 200, so all of them pick node0 (lowest index).
  const agents = await startLocalAgents(L, AGENT, [BIN], {});
  cleanup.add(async () => {
    for (const a of agents) await a.stop();
  });
  const backendArgs = [0, 1, 2].flatMap((
    i,
  ) => ["--backend", `node${i}=127.0.0.1:${L.port(i)},health=http://127.0.0.1:${AGENT + i}`]);
  // Fixed ports below the ephemeral range: a port picked as "free" could be taken by the time
  // the next process binds it.
  const proxyArgs = (port: number) => [
    "proxy",
    "--listen",
    `127.0.0.1:${port}`,
    "--api-listen",
    `127.0.0.1:${port + 10}`,
    "--health-listen",
    "127.0.0.1:0",
    "--api-password",
    "bench-secret",
    "--log-level",
    "warning",
    ...backendArgs,
  ];
  const bunPort = 20400;
  const haPort = 20401;
  const denoPort = 20402;
  const socketsPort = 20403;
  const bunProxy = startDaemon(proxyArgs(bunPort), { command: [BIN] });
  cleanup.add(() => bunProxy.stop());
  // The same binary on the runtime's own sockets (the data plane before epoll threads), as
  // many threads: what the epoll data plane buys.
  const socketsProxy = startDaemon([...proxyArgs(socketsPort), "--data-plane", "sockets"], {
    command: [BIN],
  });
  cleanup.add(() => socketsProxy.stop());
  const denoProxy = startDaemon(proxyArgs(denoPort), {
    command: [DENO, "run", "-A", path.join(ROOT, "mod.ts")],
  });
  cleanup.add(() => denoProxy.stop());
  const haproxy = startHaproxy(
    "/tmp/galerad-perf-haproxy.cfg",
    haproxyConfig({
      bind: `127.0.0.1:${haPort}`,
      maxconn: 8000,
      servers: labServers("127.0.0.1", [0, 1, 2].map((i) => L.port(i)), AGENT),
      check: { inter: 500, rise: 2, fall: 2 },
    }),
  );
  cleanup.add(() => haproxy.kill("SIGKILL"));
  const targets: Target[] = [
    { name: "galerad (bun binary)", port: bunPort, pid: () => bunProxy.child.pid },
    { name: "haproxy", port: haPort, pid: () => haproxy.pid },
    { name: "galerad (bun, sockets)", port: socketsPort, pid: () => socketsProxy.child.pid },
    { name: "galerad (deno)", port: denoPort, pid: () => denoProxy.child.pid },
    { name: "direct", port: L.port(0) },
  ];
  for (const t of targets) {
    await waitFor(`${t.name} to accept connections`, () =>
      new Promise<boolean>((resolve) => {
        const probe = net.connect({ host: "127.0.0.1", port: t.port });
        probe.once("connect", () => (probe.destroy(), resolve(true)));
        probe.once("error", () => resolve(false));
      }), 60_000);
  }
  await new Promise((r) => setTimeout(r, 2000));
  for (const t of targets) {
    const reached = await whichPort(t.port);
    if (reached !== L.port(0)) throw new Error(`${t.name} routes to ${reached}, not node0`);
  }
  const common = [...sysbenchTarget(L.port(0)), "--auto_inc=off"];
  execFileSync("sysbench", ["oltp_read_write", ...common, "prepare"], { stdio: "ignore" });
  await L.sql(
    0,
    "CREATE TABLE lab.bulk (id INT PRIMARY KEY); INSERT INTO lab.bulk SELECT seq FROM test.seq_1_to_64",
  );

  if (SOAK_ONLY) {
    const samples = await soak(bunPort, bunProxy.child.pid, SOAK);
    console.log(soakLine(samples, SOAK));
    writeSection(
      "soak",
      `
## Memory soak

\`node_modules/.bin/bun scripts/bench/throughput.ts --soak ${SOAK} --soak-only\` — ${
        new Date().toISOString().slice(0, 10)
      }; ${machine()}.

${soakLine(samples, SOAK)}

Samples (MiB): ${samples.map((v) => fmt(v, 1)).join(", ")}.
`,
    );
    return;
  }
  // Idle sessions: RSS with 1,000 open sessions through each proxy, first on the freshly
  // started processes (the target: a proxy holding 1,000 idle clients).
  const idleFresh = await idleRss(targets, "fresh");
  const threadsAtStart = await galeradThreads(bunPort);
  const workloads: [string, number][] = [
    ["oltp_point_select", 8],
    ["oltp_point_select", 32],
    ["oltp_point_select", 128],
    ["oltp_read_write", 8],
    ["oltp_read_write", 32],
  ];
  // Warm-up, not recorded: 5 s of each workload through every target, so no target's first
  // measured round also pays its start-up (the runtimes' JIT compiling the hot path;
  // HAProxy's and MariaDB's caches filling).
  for (const [test, threads] of workloads) {
    for (const t of targets) sysbench(t.port, test, threads, 5);
  }
  console.log("warm-up done");
  const results = new Map<
    string,
    Map<string, { qps: number[]; p95: number[]; cpuUs: number[] }>
  >();
  for (const [test, threads] of workloads) {
    const key = `${test} ${threads}`;
    results.set(key, new Map());
    for (let round = 0; round < ROUNDS; round++) {
      for (const t of roundOrder(targets, round)) {
        const r = sysbench(t.port, test, threads, SECONDS, t.pid?.());
        const entry = results.get(key)!.get(t.name) ?? { qps: [], p95: [], cpuUs: [] };
        entry.qps.push(r.qps);
        entry.p95.push(r.p95);
        entry.cpuUs.push(r.cpuUs);
        results.get(key)!.set(t.name, entry);
        console.log(
          `${key} round ${round + 1} ${t.name}: ${fmt(r.qps)} qps, p95 ${r.p95} ms, proxy CPU ${
            fmt(r.cpuUs, 1)
          } µs/query`,
        );
      }
    }
  }

  const threadsAfterRounds = await galeradThreads(bunPort);
  // Idle sessions again, after the sysbench rounds: what the runtimes kept from the load.
  const idleAfterLoad = await idleRss(targets, "after load");

  // Connection rate: 1,000 new connections per second for 5 s.
  const rate: Record<string, Awaited<ReturnType<typeof connectionRate>>> = {};
  for (const t of targets) {
    rate[t.name] = await connectionRate(t.port, 1000, 5);
    console.log(
      `rate ${t.name}: ${rate[t.name].ok} ok, ${rate[t.name].failed} failed, ${
        fmt(rate[t.name].achieved)
      } /s`,
    );
    await new Promise((r) => setTimeout(r, 1000));
  }

  // Bulk: a 64 MiB result, rounds alternating (roundOrder).
  const bulkMBs = new Map<string, number[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const t of roundOrder(targets, round)) {
      const v = await bulk(t.port);
      bulkMBs.set(t.name, [...(bulkMBs.get(t.name) ?? []), v]);
    }
  }
  const slow: Record<string, number> = {};
  for (const t of targets.filter((x) => x.pid)) slow[t.name] = await slowReader(t.port, t.pid!());

  // Soak: galerad's RSS under steady point selects.
  const soakSamples = SOAK > 0 ? await soak(bunPort, bunProxy.child.pid, SOAK) : [];
  const ha = "haproxy";
  const tableRows: string[] = [];
  for (const [key, byTarget] of results) {
    const h = byTarget.get(ha)!;
    const d = byTarget.get("direct")!;
    for (const t of targets) {
      const r = byTarget.get(t.name)!;
      const q = median(r.qps), p = median(r.p95), c = median(r.cpuUs);
      // Round by round against the HAProxy run next to it: drift of the machine between
      // rounds cancels out of these ratios.
      const paired = median(r.qps.map((v, i) => v / h.qps[i]));
      tableRows.push(
        `| ${key} | ${t.name} | ${fmt(q)} | ${fmt(p, 2)} | ${fmt(q / median(h.qps), 2)}× | ${
          fmt(paired, 2)
        }× | ${fmt(p / median(h.p95), 2)}× | ${fmt(q / median(d.qps), 2)}× | ${
          fmt(p / median(d.p95), 2)
        }× | ${Number.isNaN(c) ? "—" : `${fmt(c, 1)} (${fmt(c / median(h.cpuUs), 2)}×)`} |`,
      );
    }
  }
  const soakText = soakLine(soakSamples, SOAK);
  writeSection(
    "throughput",
    `
## Throughput and cost per query: sysbench through galerad, HAProxy and direct

\`node_modules/.bin/bun scripts/bench/throughput.ts --rounds ${ROUNDS} --seconds ${SECONDS}${
      SOAK ? ` --soak ${SOAK}` : ""
    }\` — ${new Date().toISOString().slice(0, 10)}; ${machine()}.

Local 3-node Galera lab; every target routes to node0 (one active server, the others backup).
galerad runs with its defaults: \`--threads auto\` (two data-plane threads, more under load up
to one per CPU; the Bun binary ran ${threadsAtStart ?? "?"} at the start and ${
      threadsAfterRounds ?? "?"
    } after the rounds
on this ${CPUS}-CPU machine, where HAProxy's default \`nbthread\` runs ${CPUS}) and
\`--data-plane auto\` (epoll threads); as a control, the same binary with \`--data-plane
sockets\` (the runtime's own sockets, two threads). "proxy CPU" is the proxy process's user +
system CPU (all threads, from /proc/PID/stat) per query, and its ratio to HAProxy's: unlike qps
it hardly moves with the machine's noise. "qps vs HAProxy" divides the medians; "per round" is
the median of each round's ratio to the HAProxy run beside it, which cancels the machine's drift
between rounds. HAProxy 2.6 in TCP mode with \`on-marked-down shutdown-sessions\` and the agent
as \`httpchk\`. sysbench 1.0.20, 4 tables × 10,000 rows (\`--auto_inc=off\`), ${SECONDS} s per
run, targets alternating (every other round in reverse order, direct always last), ${ROUNDS} rounds
after an unrecorded 5 s warm-up of each; medians. sysbench, MariaDB and the proxy share ${CPUS}
CPUs, so a proxy's CPU per query shows directly in throughput.

| workload threads | target | qps | p95 ms | qps vs HAProxy | per round | p95 vs HAProxy | qps vs direct | p95 vs direct | proxy CPU µs/query |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${tableRows.join("\n")}

1,000 idle sessions (full MySQL handshakes) held open through each proxy, RSS before → after
(${IDLE_SETTLE_MS / 1000} s after the last one opened), on the freshly started processes: ${
      idleText(idleFresh)
    }.
The same after the sysbench rounds above (memory the runtimes kept from the load included):
${idleText(idleAfterLoad)}.

New connections at 1,000/s for 5 s (connect, read the greeting, close):
${
      Object.entries(rate).map(([n, v]) =>
        `${n} ${v.ok} ok / ${v.failed} failed (${fmt(v.achieved)}/s)`
      ).join("; ")
    }.

Bulk: a 64 MiB result (\`SELECT REPEAT('x', 1 MiB)\` × 64 rows), median MB/s:
${
      targets.map((t) => `${t.name} ${fmt(median(bulkMBs.get(t.name)!))}`).join("; ")
    }; galerad (bun) / HAProxy = ${
      fmt(median(bulkMBs.get("galerad (bun binary)")!) / median(bulkMBs.get(ha)!), 2)
    }×. Back-pressure: a client reading that result one row per 100 ms grew the proxy's RSS by
${Object.entries(slow).map(([n, v]) => `${n} ${fmt(v, 1)} MiB`).join("; ")}.

${soakText}
`,
  );
}

await runBench(main);
