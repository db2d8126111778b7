/**
 * The reader port's read throughput: sysbench read-only workloads through galerad's
 * `--reader-listen` (node0 the writer, so readers spread over node1 and node2), through HAProxy
 * `balance leastconn` over the same two nodes, and direct to one node, in the same run.
 *
 *   node_modules/.bin/bun scripts/bench/readers.ts [--rounds 3] [--seconds 10]
 *
 * Targets alternate round by round (report.ts roundOrder); medians and ratios. Writes the
 * "readers" section of docs/BENCHMARKS.md.
 */
import { execFileSync } from "node:child_process";
import net from "node:net";
import { availableParallelism } from "node:os";
import path from "node:path";
import { waitFor } from "../lab/fixtures.ts";
import { lab, whichPort } from "../lab/lab.ts";
import { type Daemon, startDaemon } from "../lab/spawn.ts";
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
import { sysbench, sysbenchTarget } from "./sysbench.ts";
import { haproxyConfig, labServers, startHaproxy, startLocalAgents } from "./topology.ts";

const OPTIONS = benchOptions("readers.ts [--rounds 3] [--seconds 10]", {
  rounds: { fallback: 3, min: 1 },
  seconds: { fallback: 10, min: 1 },
});
const BIN = path.join(ROOT, "galerad");
const L = lab({ dir: "/tmp/galerad-readers-lab", port: 22306, galeraPort: 22567 });
const AGENT = 22400;
const WRITER = 22410;
const READER = 22411;
const HAPROXY = 22412;

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
  agents.push(
    ...await startLocalAgents(L, AGENT, [BIN], {}),
  );
  const proxy = startDaemon([
    "proxy",
    "--listen",
    `127.0.0.1:${WRITER}`,
    "--reader-listen",
    `127.0.0.1:${READER}`,
    "--api-listen",
    "127.0.0.1:0",
    "--health-listen",
    "127.0.0.1:0",
    "--api-password",
    "bench-secret",
    "--log-level",
    "warning",
    ...[0, 1, 2].flatMap((i) => [
      "--backend",
      `node${i}=127.0.0.1:${L.port(i)},health=http://127.0.0.1:${AGENT + i}`,
    ]),
  ], { command: [BIN] });
  cleanup.add(() => proxy.stop());
  // HAProxy's reader idiom: the two nodes that are not the writer, least connections first.
  const haproxy = startHaproxy(
    "/tmp/galerad-readers-haproxy.cfg",
    haproxyConfig({
      bind: `127.0.0.1:${HAPROXY}`,
      maxconn: 8000,
      servers: labServers("127.0.0.1", [0, 1, 2].map((i) => L.port(i)), AGENT, false).slice(1),
      check: { inter: 500, rise: 2, fall: 2 },
      balance: "leastconn",
    }),
  );
  cleanup.add(() => haproxy.kill("SIGKILL"));
  const targets = [
    { name: "galerad reader port (node1 + node2)", port: READER, pid: () => proxy.child.pid },
    { name: "haproxy leastconn (node1 + node2)", port: HAPROXY, pid: () => haproxy.pid },
    { name: "direct (node1)", port: L.port(1), pid: () => undefined },
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
  // The reader port never serves the writer: check it before measuring.
  for (let i = 0; i < 4; i++) {
    if (await whichPort(READER) === L.port(0)) {
      throw new Error("the reader port routed to node0, the active node");
    }
  }
  execFileSync("sysbench", [
    "oltp_read_only",
    ...sysbenchTarget(L.port(0)),
    "--auto_inc=off",
    "prepare",
  ], { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 2000)); // the other nodes apply the tables
  const workloads: [string, number][] = [
    ["oltp_point_select", 32],
    ["oltp_read_only", 16],
  ];
  for (const [test, threads] of workloads) {
    for (const t of targets) sysbench(t.port, test, threads, 3);
  }
  const results = new Map<string, Map<string, { qps: number[]; cpuUs: number[] }>>();
  for (const [test, threads] of workloads) {
    const key = `${test} ${threads}`;
    results.set(key, new Map(targets.map((t) => [t.name, { qps: [], cpuUs: [] }])));
    for (let round = 0; round < OPTIONS.rounds; round++) {
      for (const t of roundOrder(targets, round)) {
        const r = sysbench(t.port, test, threads, OPTIONS.seconds, t.pid());
        results.get(key)!.get(t.name)!.qps.push(r.qps);
        results.get(key)!.get(t.name)!.cpuUs.push(r.cpuUs);
        console.log(`${key}\t${t.name}\t${fmt(r.qps)} qps`);
      }
    }
  }
  const rows: string[] = [];
  for (const [key, byTarget] of results) {
    const g = byTarget.get(targets[0].name)!;
    const h = byTarget.get(targets[1].name)!;
    const d = byTarget.get(targets[2].name)!;
    for (const t of targets) {
      const r = byTarget.get(t.name)!;
      const q = median(r.qps);
      const c = median(r.cpuUs);
      rows.push(
        `| ${key} | ${t.name} | ${fmt(q)} | ${fmt(q / median(h.qps), 2)}× | ${
          fmt(q / median(d.qps), 2)
        }× | ${Number.isNaN(c) ? "—" : fmt(c, 1)} |`,
      );
    }
    console.log(
      `${key}: galerad/haproxy ${fmt(median(g.qps) / median(h.qps), 2)}×, galerad/direct ${
        fmt(median(g.qps) / median(d.qps), 2)
      }×`,
    );
  }
  writeSection(
    "readers",
    `
## Reader port: read throughput over two readers

\`node_modules/.bin/bun scripts/bench/readers.ts --rounds ${OPTIONS.rounds} --seconds ${OPTIONS.seconds}\` — ${
      new Date().toISOString().slice(0, 10)
    }; ${machine()}.

Local 3-node Galera lab, node0 the active (writer) node. The galerad Bun binary's
\`--reader-listen\` sends each new client to node1 or node2 (fewest reader sessions first);
HAProxy 2.6 \`balance leastconn\` over the same two nodes; direct is one reader node alone.
sysbench 1.0.20, 4 tables × 10,000 rows, ${OPTIONS.seconds} s per run, ${OPTIONS.rounds} rounds,
targets alternating; medians. Everything shares ${availableParallelism()} CPUs with the three
MariaDB servers, so two readers cannot double one node's throughput here: the figure that
carries over to real hosts is galerad against HAProxy on the same two nodes.

| workload threads | target | qps | vs HAProxy | vs direct | proxy CPU µs/query |
| --- | --- | --- | --- | --- | --- |
${rows.join("\n")}
`,
  );
}

await runBench(main);
