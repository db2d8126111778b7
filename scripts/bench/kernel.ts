/**
 * The kernel data-plane spike (issue 24): is destination NAT in nftables, with galerad only
 * deciding where the rule points, worth building? Clients, the proxy host and the Galera nodes
 * each in a network namespace of their own (scripts/netns-lab.sh); sysbench in the clients'
 * namespace through (a) the nftables rules of src/dataplane/nat_rules.ts on the proxy host,
 * (b) galerad's epoll plane, (c) HAProxy, (d) direct to the node. Then the semantics the plane
 * must keep, measured on the same rules: severing idle flows (both ends), refusing, and what a
 * crash leaves.
 *
 *   node_modules/.bin/bun scripts/bench/kernel.ts [--rounds 3] [--seconds 10] [--idle 1000]
 *
 * Needs root (namespaces, nftables inside them). Writes the "kernel" section of
 * docs/BENCHMARKS.md.
 */
import process from "node:process";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import path from "node:path";
import {
  guardTable,
  type NatTarget,
  routeSwap,
  routeTable,
} from "../../src/dataplane/nat_rules.ts";
import { waitFor } from "../lab/fixtures.ts";
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
import { haproxyConfig, labServers, startHaproxy, startLabAgents } from "./topology.ts";

const OPTIONS = benchOptions(
  "kernel.ts [--rounds 3] [--seconds 10] [--idle 1000] [--semantics-only]",
  {
    rounds: { fallback: 3, min: 1 },
    seconds: { fallback: 10, min: 1 },
    idle: { fallback: 1000, min: 10 },
  },
  ["semantics-only"],
);
const PREFIX = "glkb";
const NS_ENV = { NETNS_PREFIX: PREFIX, NETNS_STATE: `/tmp/${PREFIX}-netns` };
const LAB_DIR = "/tmp/galerad-kernel-lab";
const BIN = path.join(ROOT, "galerad");
const BUN = path.join(ROOT, "node_modules/.bin/bun");
const NAT_PORT = 4306;
const GALERAD_PORT = 4307;
const HAPROXY_PORT = 4308;
const TABLE = "galerad";
const GUARD = "galerad_guard";

const inNs = (name: string) => ["ip", "netns", "exec", `${PREFIX}-${name}`];
const run = (command: string[], env: Record<string, string> = {}, input?: string) =>
  execFileSync(command[0], command.slice(1), {
    encoding: "utf8",
    env: { ...process.env, ...NS_ENV, ...env },
    input,
    maxBuffer: 64 << 20,
  });
const netns = (...args: string[]) =>
  run(["bash", path.join(ROOT, "scripts/netns-lab.sh"), ...args]);
const lab = (...args: string[]) =>
  run([...inNs("db"), "bash", path.join(ROOT, "scripts/galera-lab.sh"), ...args], {
    LAB_DIR,
    LAB_PORT: "13306",
    LAB_GALERA_PORT: "14567",
    LAB_BIND: "0.0.0.0",
  });

/** `nft -i` inside the proxy namespace: the owner of the route table while it runs. */
class NftShell {
  readonly child: ChildProcess;
  constructor() {
    this.child = spawn(inNs("px")[0], [...inNs("px").slice(1), "nft", "-i"], {
      stdio: ["pipe", "ignore", "inherit"],
    });
  }
  send(line: string) {
    this.child.stdin!.write(`${line}\n`);
  }
  stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    this.child.stdin!.end();
    return new Promise((r) => this.child.once("close", r));
  }
}

/** The mariadb client in the clients' namespace: `sql` through `host:port`, its output. */
function mariadbFromClients(host: string, port: number, sql: string, flags: string[] = []) {
  return run([
    ...inNs("cli"),
    "mariadb",
    `-h${host}`,
    `-P${port}`,
    "-ulab",
    "-plab",
    ...flags,
    "--connect-timeout=5",
    "-e",
    sql,
  ]).toString();
}

/** Which node's port a session through `host:port` reaches, asked from the clients' namespace. */
function reachedPort(host: string, port: number): number {
  return Number(mariadbFromClients(host, port, "SELECT @@port", ["-N", "-B"]).trim());
}

/** A client's first answer from `host:port` in the clients' namespace: rows or an error. */
function firstPacket(host: string, port: number): string {
  try {
    return mariadbFromClients(host, port, "SELECT 1");
  } catch (error) {
    return String((error as { stderr?: string }).stderr ?? error).trim();
  }
}

interface IdleResult {
  opened: number;
  closed: number;
  lastCloseMs: number;
  medianCloseMs: number;
}

/**
 * Opens `count` idle TCP sessions to `host:port` from the clients' namespace (each reads the
 * greeting, then waits); resolves with a function that marks the moment of a sever and waits
 * until every session has seen its close.
 */
async function idleClients(host: string, port: number, count: number) {
  const child = spawn(inNs("cli")[0], [
    ...inNs("cli").slice(1),
    BUN,
    path.join(ROOT, "scripts/bench/idle_clients.ts"),
    host,
    String(port),
    String(count),
  ], { stdio: ["pipe", "pipe", "inherit"] });
  let out = "";
  child.stdout!.on("data", (c) => (out += c));
  await waitFor(`${count} idle sessions open`, () => /open \d+\n/.test(out), 120_000);
  const opened = Number(/open (\d+)/.exec(out)![1]);
  return {
    opened,
    /** Tells the clients the sever starts now; resolves with how the closes came. */
    severed: async (waitMs: number): Promise<IdleResult> => {
      child.stdin!.write(`mark ${waitMs}\n`);
      await waitFor("idle clients report", () => /closed .*\n/.test(out), waitMs + 30_000);
      const m = /closed (\d+) last ([\d.]+|NaN) median ([\d.]+|NaN)/.exec(out)!;
      child.kill();
      return {
        opened,
        closed: Number(m[1]),
        lastCloseMs: Number(m[2]),
        medianCloseMs: Number(m[3]),
      };
    },
    stop: () => child.kill(),
  };
}

async function main(cleanup: Cleanup) {
  execFileSync("bash", [path.join(ROOT, "scripts/setup.sh")], { stdio: "inherit" });
  execFileSync("bash", [path.join(ROOT, "compile.sh")], { stdio: "inherit" });
  netns("up", "cli", "px", "db");
  cleanup.add(() => netns("down"));
  const CLI = netns("addr", "cli").trim();
  const PX = netns("addr", "px").trim();
  const DB = netns("addr", "db").trim();
  lab("destroy");
  cleanup.add(() => lab("destroy"));
  lab("up", "3");
  const daemons: Daemon[] = [];
  cleanup.add(async () => {
    for (const d of daemons.reverse()) await d.stop();
  });
  daemons.push(
    ...await startLabAgents({
      count: 3,
      listen: (i) => `0.0.0.0:${9200 + i}`,
      socket: (i) => path.join(LAB_DIR, `node${i}`, "mysqld.sock"),
      url: (i) => `http://${DB}:${9200 + i}/`,
      command: [...inNs("db"), BIN],
      // Asked from the proxy's namespace: the host cannot reach these addresses.
      probe: (url) => {
        try {
          run([...inNs("px"), "curl", "-sf", "-o", "/dev/null", url]);
          return true;
        } catch {
          return false;
        }
      },
    }),
  );

  // (a) the kernel: forwarding on in the proxy's namespace only; no ICMP redirects, since
  // clients and nodes share its one link here.
  run([
    ...inNs("px"),
    "sysctl",
    "-qw",
    "net.ipv4.ip_forward=1",
    "net.ipv4.conf.all.send_redirects=0",
    "net.netfilter.nf_conntrack_acct=1",
  ]);
  run([...inNs("px"), "nft", "-f", "-"], {}, guardTable(GUARD));
  const nft = new NftShell();
  cleanup.add(() => nft.stop());
  const listen = { host: PX, port: NAT_PORT };
  const node = (i: number): NatTarget => ({ node: { host: DB, port: 13306 + i } });
  for (const line of routeTable(TABLE)) nft.send(line);
  nft.send(routeSwap(TABLE, listen, 1, node(0)));

  // (b) galerad, (c) HAProxy, in the proxy's namespace.
  const galerad = startDaemon([
    "proxy",
    "--listen",
    `${PX}:${GALERAD_PORT}`,
    "--api-listen",
    "127.0.0.1:8080",
    "--health-listen",
    "127.0.0.1:1936",
    "--api-password",
    "bench-secret",
    "--log-level",
    "warning",
    ...[0, 1, 2].flatMap((i) => [
      "--backend",
      `node${i}=${DB}:${13306 + i},health=http://${DB}:${9200 + i}`,
    ]),
  ], { command: [...inNs("px"), BIN] });
  daemons.push(galerad);
  const haproxy = startHaproxy(
    "/tmp/galerad-kernel-haproxy.cfg",
    haproxyConfig({
      bind: `${PX}:${HAPROXY_PORT}`,
      maxconn: 8000,
      servers: labServers(DB, [13306, 13307, 13308], 9200),
      check: { inter: 500, rise: 2, fall: 2 },
    }),
    inNs("px"),
  );
  cleanup.add(() => haproxy.kill("SIGKILL"));

  const targets = [
    { name: "nftables DNAT", host: PX, port: NAT_PORT, pid: () => undefined },
    { name: "galerad (epoll)", host: PX, port: GALERAD_PORT, pid: () => galerad.child.pid },
    { name: "haproxy", host: PX, port: HAPROXY_PORT, pid: () => haproxy.pid },
    { name: "direct", host: DB, port: 13306, pid: () => undefined },
  ];
  for (const t of targets) {
    await waitFor(`${t.name} routes to node0`, () => {
      try {
        return reachedPort(t.host, t.port) === 13306;
      } catch {
        return false;
      }
    }, 60_000);
  }
  run([
    ...inNs("cli"),
    "sysbench",
    "oltp_read_write",
    ...sysbenchTarget(13306, DB),
    "--auto_inc=off",
    "prepare",
  ]);

  const via = (t: Target) => ({ host: t.host, prefix: inNs("cli") });
  if (!OPTIONS["semantics-only"]) throughput(targets, via, { CLI, PX, DB });

  // Semantics, through the product's own kernel path (src/dataplane/nft_path.ts) driven from
  // inside the proxy's namespace: the bench's rule gives its table up first (one owner).
  await nft.stop();
  const driver = spawn(inNs("px")[0], [
    ...inNs("px").slice(1),
    BUN,
    path.join(ROOT, "scripts/bench/nft_driver.ts"),
    PX,
    String(NAT_PORT),
  ], { stdio: ["pipe", "pipe", "inherit"] });
  cleanup.add(() => driver.kill("SIGKILL"));
  let answers = "";
  driver.stdout!.on("data", (c) => (answers += c));
  let asked = 0;
  const ask = async (o: unknown) => {
    const n = ++asked;
    driver.stdin!.write(`${JSON.stringify(o)}\n`);
    // The first line is the driver's own "open"; each answer after is one line.
    await waitFor(`driver answers ${JSON.stringify(o)}`, () => answers.split("\n").length > n + 1);
    const answer = JSON.parse(answers.split("\n")[n]);
    if (answer.error) throw new Error(answer.error);
    return answer.ok;
  };
  await waitFor("kernel path open", () => answers.includes("\n"), 30_000);
  if (!answers.startsWith('{"ok":"open"}')) throw new Error(`driver: ${answers}`);
  const nodeOf = (i: number) => ({ name: `node${i}`, host: DB, port: 13306 + i });
  await ask({ point: nodeOf(0) });
  const idle = await idleClients(PX, NAT_PORT, OPTIONS.idle);
  const counted = await ask({ counts: true });
  const swapStart = performance.now();
  const closes = idle.severed(5000);
  await ask({ point: nodeOf(1) });
  const swapMs = performance.now() - swapStart;
  const woken = await ask({ wake: true });
  const wakeMs = performance.now() - swapStart;
  const sever = await closes;
  await new Promise((r) => setTimeout(r, 1000));
  const leftOnNode0 = Number(
    lab("sql", "0", "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'lab'")
      .trim(),
  );
  const afterSwap = reachedPort(PX, NAT_PORT);
  console.log(
    `sever: ${counted.node0.sessions} flows counted on node0, swap applied in ${
      fmt(swapMs, 1)
    } ms, ` +
      `woken by ${fmt(wakeMs, 1)} ms (${woken.left} left open); clients closed ` +
      `${sever.closed}/${sever.opened}, last ${sever.lastCloseMs} ms, median ${sever.medianCloseMs} ms ` +
      `after the swap began; node0 sessions left ${leftOnNode0}; new sessions reach ${afterSwap}`,
  );

  // No node active: the route points nowhere, new flows reach the listener on the proxy's own
  // port (the driver's here, which refuses as galerad's does).
  await ask({ point: null });
  const nowhere = firstPacket(PX, NAT_PORT);
  console.log(`nowhere: ${nowhere}`);

  // A crash: the process owning the route table is killed; the table goes, the guard stays.
  await ask({ point: nodeOf(0) });
  const live = await idleClients(PX, NAT_PORT, 20);
  driver.kill("SIGKILL");
  await new Promise((r) => driver.once("close", r));
  await new Promise((r) => setTimeout(r, 200));
  const tablesAfterCrash = run([...inNs("px"), "nft", "list", "tables"]).trim().split("\n");
  const refusedAfterCrash = firstPacket(PX, NAT_PORT);
  const liveResult = await live.severed(5000);
  console.log(
    `after a crash: tables ${tablesAfterCrash.join(", ")}; new: ${refusedAfterCrash}; ` +
      `${liveResult.closed}/${liveResult.opened} idle sessions closed within 5 s`,
  );
  writeSection(
    "kernel-semantics",
    `
## Kernel data plane: the semantics, measured (docs/KERNEL_PLANE.md)

\`node_modules/.bin/bun scripts/bench/kernel.ts --semantics-only --idle ${OPTIONS.idle}\` — ${
      new Date().toISOString().slice(0, 10)
    }; the namespaces above, galerad's kernel path (src/dataplane/nft_path.ts) run from inside the
proxy's namespace by scripts/bench/nft_driver.ts, the route pointing at node0 of the Galera lab.

- **Sever of idle flows**: ${sever.opened} idle MariaDB sessions (greeting read, then silent),
  ${counted.node0.sessions} counted on node0 by conntrack. The route was swapped to node1 (applied
  and acknowledged ${fmt(swapMs, 1)} ms after the swap began), the cut flows woken at both ends
  (done at ${
      fmt(wakeMs, 1)
    } ms, ${woken.left} left open): ${sever.closed}/${sever.opened} clients saw the reset,
  the last ${sever.lastCloseMs} ms after the swap began (median ${sever.medianCloseMs} ms);
  node0 kept ${leftOnNode0} of the lab user's sessions; a new session reached port ${afterSwap}.
- **No node active**: the route points nowhere and a new client reaches the proxy's own
  listener: \`${nowhere.replaceAll("`", "'").split("\n")[0]}\`.
- **A crash** (SIGKILL of the process owning the route table): the tables left were
  ${
      tablesAfterCrash.map((t) => `\`${t}\``).join(", ")
    }; a new client was refused by the host (the mariadb client prints a refusal as
  2002 with errno 115): \`${
      refusedAfterCrash.replaceAll("`", "'").split("\n")[0]
    }\`; ${liveResult.closed}/${liveResult.opened} idle
  sessions through it were closed within 5 s (the guard resets a flow on its next packet; an idle
  one that sends nothing keeps its end open until it does, or until its keepalive).
`,
  );
}

type Target = { name: string; host: string; port: number; pid: () => number | undefined };

/** sysbench through every target, alternating, and the section of BENCHMARKS.md it fills. */
function throughput(
  targets: Target[],
  via: (t: Target) => { host: string; prefix: string[] },
  { CLI, PX, DB }: Record<"CLI" | "PX" | "DB", string>,
) {
  const workloads: [string, number][] = [
    ["oltp_point_select", 8],
    ["oltp_point_select", 32],
    ["oltp_point_select", 128],
    ["oltp_read_write", 8],
    ["oltp_read_write", 32],
  ];
  for (const [test, threads] of workloads) {
    for (const t of targets) sysbench(t.port, test, threads, 3, undefined, via(t));
  }
  console.log("warm-up done");
  type Row = { qps: number[]; p95: number[]; machineUs: number[]; cpuUs: number[] };
  const results = new Map<string, Map<string, Row>>();
  for (const [test, threads] of workloads) {
    const key = `${test} ${threads}`;
    results.set(key, new Map());
    for (let round = 0; round < OPTIONS.rounds; round++) {
      for (const t of roundOrder(targets, round)) {
        const r = sysbench(t.port, test, threads, OPTIONS.seconds, t.pid(), via(t));
        const row = results.get(key)!.get(t.name) ??
          { qps: [], p95: [], machineUs: [], cpuUs: [] };
        row.qps.push(r.qps);
        row.p95.push(r.p95);
        row.machineUs.push(r.machineUs);
        row.cpuUs.push(r.cpuUs);
        results.get(key)!.set(t.name, row);
        console.log(
          `${key} round ${round + 1} ${t.name}: ${fmt(r.qps)} qps, p95 ${r.p95} ms, machine ${
            fmt(r.machineUs, 1)
          } µs/query, proxy process ${fmt(r.cpuUs, 1)} µs/query`,
        );
      }
    }
  }

  const rows: string[] = [];
  const ratios: Record<string, number> = {};
  for (const [key, byTarget] of results) {
    const h = byTarget.get("haproxy")!;
    const d = byTarget.get("direct")!;
    for (const t of targets) {
      const r = byTarget.get(t.name)!;
      const q = median(r.qps);
      const paired = median(r.qps.map((v, i) => v / h.qps[i]));
      if (t.name === "nftables DNAT") ratios[key] = paired;
      const m = median(r.machineUs);
      const added = m - median(d.machineUs);
      rows.push(
        `| ${key} | ${t.name} | ${fmt(q)} | ${fmt(median(r.p95), 2)} | ${
          fmt(q / median(h.qps), 2)
        }× | ${fmt(paired, 2)}× | ${fmt(q / median(d.qps), 2)}× | ${fmt(m, 1)} | ${
          t.name === "direct" ? "—" : fmt(added, 1)
        } | ${Number.isNaN(median(r.cpuUs)) ? "—" : fmt(median(r.cpuUs), 1)} |`,
      );
    }
  }
  const verdict = ["oltp_point_select 8", "oltp_point_select 32"].every((k) => ratios[k] >= 1.15);
  writeSection(
    "kernel",
    `
## Kernel data plane spike: nftables DNAT vs galerad vs HAProxy vs direct

\`node_modules/.bin/bun scripts/bench/kernel.ts --rounds ${OPTIONS.rounds} --seconds ${OPTIONS.seconds} --idle ${OPTIONS.idle}\` — ${
      new Date().toISOString().slice(0, 10)
    }; ${machine()}.

Three network namespaces joined by a bridge: sysbench in one (${CLI}), the proxy host in one
(${PX}: the nftables rules of src/dataplane/nat_rules.ts, galerad's epoll plane, HAProxy 2.6 in
TCP mode), the 3-node Galera lab in one (${DB}); every target routes to node0. Targets alternate
within each round, ${OPTIONS.rounds} rounds of ${OPTIONS.seconds} s after a 3 s warm-up of each;
medians. "per round" is the median of each round's ratio to the HAProxy run beside it. The
namespaces share one kernel and ${availableParallelism()} CPUs, so the kernel's forwarding work (softirq) belongs to
no process: "machine CPU" is the whole machine's busy time (user, system, irq, softirq, from
/proc/stat) per query, and "added" is that minus direct's, the cost the proxy path adds on the
proxy host, softirq included. "process CPU" is the proxy process's own (none for the kernel).

| workload threads | target | qps | p95 ms | qps vs HAProxy | per round | qps vs direct | machine CPU µs/query | added µs/query | process CPU µs/query |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join("\n")}

Verdict on the issue's bar (≥ 1.15× HAProxy's qps, per round, at 8 and 32 threads of point
selects): ${verdict ? "met" : "not met"} (${"8: "}${fmt(ratios["oltp_point_select 8"], 2)}×, 32: ${
      fmt(ratios["oltp_point_select 32"], 2)
    }×).
`,
  );
}

await runBench(main);
