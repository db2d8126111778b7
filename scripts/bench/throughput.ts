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
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { availableParallelism } from "node:os";
import path from "node:path";
import mysql from "mysql2/promise";
import { waitFor } from "../../tests/helpers/fixtures.ts";
import { lab } from "../../tests/helpers/lab.ts";
import { type Daemon, startDaemon } from "../../tests/helpers/spawn.ts";
import { sysbench, sysbenchTarget } from "./sysbench.ts";
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

interface Target {
  name: string;
  port: number;
  pid?: () => number | undefined;
}

/** The data-plane threads a galerad listening on `port` runs now (its API), or null. */
async function galeradThreads(port: number): Promise<number | null> {
  const answer = await fetch(`http://127.0.0.1:${port + 10}/v0/cluster`, {
    headers: { authorization: `Basic ${btoa("admin:bench-secret")}` },
  }).catch(() => null);
  if (!answer?.ok) return null;
  const { threads } = await answer.json() as { threads?: unknown };
  return typeof threads === "number" ? threads : null;
}

function rssMiB(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
    return kb / 1024;
  } catch {
    return Number.NaN;
  }
}

/** Opens `count` idle client sessions (full MySQL handshakes) and returns a closer. */
async function idleSessions(port: number, count: number) {
  const conns: mysql.Connection[] = [];
  for (let i = 0; i < count; i += 50) {
    const batch = await Promise.all(
      Array.from(
        { length: Math.min(50, count - i) },
        () =>
          mysql.createConnection({
            host: "127.0.0.1",
            port,
            user: "lab",
            password: "lab",
            connectTimeout: 10_000,
          }),
      ),
    );
    conns.push(...batch);
  }
  return () => {
    for (const c of conns) c.destroy();
  };
}

/** RSS of each proxy before and with 1,000 idle sessions open through it. */
/** How long the 1,000 idle sessions are held before RSS is read. */
const IDLE_SETTLE_MS = 5000;

async function idleRss(targets: Target[], label: string) {
  const idle: Record<string, { before: number; after: number }> = {};
  for (const t of targets.filter((x) => x.pid)) {
    const before = rssMiB(t.pid!());
    const close = await idleSessions(t.port, 1000);
    // Held open: measured once the burst of handshakes is over, when a proxy has settled (Bun's
    // galerad collects 3 s after its last new session, src/dataplane/memory.ts).
    await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
    idle[t.name] = { before, after: rssMiB(t.pid!()) };
    close();
    console.log(
      `idle 1000 (${label}) ${t.name}: RSS ${fmt(idle[t.name].before, 1)} → ${
        fmt(idle[t.name].after, 1)
      } MiB`,
    );
    await new Promise((r) => setTimeout(r, 1000));
  }
  return idle;
}

function idleText(idle: Record<string, { before: number; after: number }>): string {
  return Object.entries(idle).map(([n, v]) => `${n} ${fmt(v.before, 1)} → ${fmt(v.after, 1)} MiB`)
    .join("; ");
}

/** New TCP connections per second for `seconds`: connect, read the server greeting, close. */
async function connectionRate(port: number, perSecond: number, seconds: number) {
  let ok = 0;
  let failed = 0;
  const attempts: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < perSecond * seconds; i++) {
    const due = start + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    attempts.push(
      new Promise<void>((resolve) => {
        const s = net.connect({ host: "127.0.0.1", port });
        const timer = setTimeout(() => (failed++, s.destroy(), resolve()), 5000);
        s.once("data", (d) => {
          clearTimeout(timer);
          if (d[4] === 0xff) failed++;
          else ok++;
          s.destroy();
          resolve();
        });
        s.once("error", () => (clearTimeout(timer), failed++, resolve()));
      }),
    );
  }
  await Promise.all(attempts);
  return { ok, failed, achieved: (ok + failed) / ((performance.now() - start) / 1000) };
}

/** Reads a ~64 MiB result through `port` and returns MB/s. */
async function bulk(port: number): Promise<number> {
  const c = await mysql.createConnection({
    host: "127.0.0.1",
    port,
    user: "lab",
    password: "lab",
    database: "lab",
  });
  try {
    const started = performance.now();
    const [rows] = await c.query("SELECT REPEAT('x', 1048576) AS b FROM lab.bulk");
    const bytes = (rows as { b: string }[]).reduce((n, r) => n + r.b.length, 0);
    return bytes / 1e6 / ((performance.now() - started) / 1000);
  } finally {
    await c.end();
  }
}

/** A client that reads a big result very slowly; returns the proxy's RSS growth meanwhile. */
async function slowReader(port: number, pid: number | undefined): Promise<number> {
  const before = rssMiB(pid);
  let peak = before;
  const c = await mysql.createConnection({
    host: "127.0.0.1",
    port,
    user: "lab",
    password: "lab",
    database: "lab",
  });
  const stream = c.connection.query("SELECT REPEAT('y', 1048576) AS b FROM lab.bulk").stream({
    highWaterMark: 1,
  });
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 100);
  let rows = 0;
  await new Promise<void>((resolve) => {
    stream.on("data", () => {
      rows++;
      stream.pause();
      setTimeout(() => stream.resume(), 100);
    });
    stream.on("end", () => resolve());
    stream.on("error", () => resolve());
    setTimeout(() => resolve(), 6000);
  });
  clearInterval(sampler);
  c.destroy();
  return peak - before;
}

function haproxyConfig(port: number) {
  const servers = [0, 1, 2].map((i) =>
    `  server node${i} 127.0.0.1:${L.port(i)} check port ${AGENT + i} inter 500 rise 2 fall 2${
      i > 0 ? " backup" : ""
    } on-marked-down shutdown-sessions`
  );
  return `global
  maxconn 8000
defaults
  mode tcp
  timeout connect 2s
  timeout client 1h
  timeout server 1h
frontend galera_in
  bind 127.0.0.1:${port}
  default_backend galera_nodes
backend galera_nodes
  option httpchk GET /
${servers.join("\n")}
`;
}

/** RSS of the proxy sampled every 10 s while sysbench point selects run through it for SOAK s. */
async function soak(port: number, pid: number | undefined): Promise<number[]> {
  const samples: number[] = [];
  const run = spawn("sysbench", [
    "oltp_point_select",
    ...sysbenchTarget(port),
    "--threads=16",
    `--time=${SOAK}`,
    "run",
  ], { stdio: "ignore" });
  const sampler = setInterval(() => samples.push(rssMiB(pid)), 10_000);
  await new Promise((r) => run.on("close", r));
  clearInterval(sampler);
  return samples;
}

function soakLine(samples: number[]): string {
  return samples.length > 2
    ? `Memory soak: ${SOAK} s of point selects (16 threads) through the Bun binary, RSS sampled every 10 s: first ${
      fmt(samples[0], 1)
    } MiB, median ${fmt(median(samples), 1)}, last ${fmt(samples.at(-1)!, 1)}, max ${
      fmt(Math.max(...samples), 1)
    }; second half vs first half median ${
      fmt(
        median(samples.slice(samples.length / 2)) - median(samples.slice(0, samples.length / 2)),
        1,
      )
    } MiB.`
    : "Memory soak: not run (pass --soak 600).";
}

async function main(cleanup: Cleanup) {
  execFileSync("bash", [path.join(ROOT, "scripts/setup.sh")], { stdio: "inherit" });
  execFileSync("bash", [path.join(ROOT, "compile.sh")], { stdio: "inherit" });
  await L.run("destroy");
  cleanup.add(() => L.run("destroy"));
  await L.run("up", "3");
  const agents: Daemon[] = [];
  cleanup.add(async () => {
    for (const a of agents) await a.stop();
  });
  for (let i = 0; i < 3; i++) {
    agents.push(
      startDaemon([
        "healthcheck",
        "--listen",
        `127.0.0.1:${AGENT + i}`,
        "--mysql-socket",
        L.socket(i),
      ], { command: [BIN] }),
    );
  }
  // Proxies start once every agent answers 200, so all of them pick node0 (lowest index).
  await waitFor("agents healthy", async () => {
    for (let i = 0; i < 3; i++) {
      if ((await fetch(`http://127.0.0.1:${AGENT + i}/`).catch(() => null))?.status !== 200) {
        return false;
      }
    }
    return true;
  }, 60_000);
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
  writeFileSync("/tmp/galerad-perf-haproxy.cfg", haproxyConfig(haPort));
  const haproxy = spawn("haproxy", ["-db", "-f", "/tmp/galerad-perf-haproxy.cfg"], {
    stdio: "ignore",
  });
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
    const c = await mysql.createConnection({
      host: "127.0.0.1",
      port: t.port,
      user: "lab",
      password: "lab",
    });
    const [rows] = await c.query("SELECT @@port AS p");
    await c.end();
    if ((rows as { p: number }[])[0].p !== L.port(0)) {
      throw new Error(`${t.name} routes to ${(rows as { p: number }[])[0].p}, not node0`);
    }
  }
  const common = [...sysbenchTarget(L.port(0)), "--auto_inc=off"];
  execFileSync("sysbench", ["oltp_read_write", ...common, "prepare"], { stdio: "ignore" });
  await L.sql(
    0,
    "CREATE TABLE lab.bulk (id INT PRIMARY KEY); INSERT INTO lab.bulk SELECT seq FROM test.seq_1_to_64",
  );

  if (SOAK_ONLY) {
    const samples = await soak(bunPort, bunProxy.child.pid);
    console.log(soakLine(samples));
    writeSection(
      "soak",
      `
## Memory soak

\`node_modules/.bin/bun scripts/bench/throughput.ts --soak ${SOAK} --soak-only\` — ${
        new Date().toISOString().slice(0, 10)
      }; ${machine()}.

${soakLine(samples)}

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
  const soakSamples = SOAK > 0 ? await soak(bunPort, bunProxy.child.pid) : [];
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
  const soakText = soakLine(soakSamples);
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
