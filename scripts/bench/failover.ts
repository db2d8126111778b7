/**
 * Failover time on the local Galera lab: galerad (the compiled binary) beside HAProxy 2.6 as
 * seed 004 configures it (inter 10000 fall 2) and tuned (inter 1s fall 2).
 *
 *   node_modules/.bin/bun scripts/bench/failover.ts [--runs 5] [--soak 300]
 *
 * For each target and run: find the node the target routes to, kill -9 it, and time the first
 * successful write through the target and, in the same run, the first successful write made
 * directly on a surviving node. Galera itself needs seconds to evict a killed node (its suspect
 * timeout); the difference is the proxy's own share. Writes are attempted every 50 ms on fresh
 * connections, so a write blocked by Galera and a write refused by a proxy are both retried.
 *
 * --soak S: S seconds of sysbench oltp_read_write through galerad; the register epoch and every
 * backend's lastChange must stay put (no false failover).
 */
import process from "node:process";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import mysql from "mysql2/promise";
import { freePort, waitFor } from "../lab/fixtures.ts";
import { lab } from "../lab/lab.ts";
import { type Daemon, props, startDaemon } from "../lab/spawn.ts";
import { haproxyConfig, labServers, startHaproxy, startLocalAgents } from "./topology.ts";
import {
  benchOptions,
  type Cleanup,
  fmt,
  machine,
  ROOT,
  runBench,
  summary,
  writeSection,
} from "./report.ts";

const { runs: RUNS, soak: SOAK } = benchOptions("failover.ts [--runs 5] [--soak 300]", {
  runs: { fallback: 5, min: 1 },
  soak: { fallback: 0, min: 0 },
});
const BIN = path.join(ROOT, "galerad");
const L = lab({ dir: "/tmp/galerad-bench-lab", port: 17306, galeraPort: 18567 });
const AGENT = 19300;
const SECRET = "failover-bench-peer-secret-0123456789";
const backendArgs = () =>
  [0, 1, 2].flatMap((i) => [
    "--backend",
    `node${i}=127.0.0.1:${L.port(i)},health=http://127.0.0.1:${AGENT + i}`,
  ]);
const agents: Daemon[] = [];

function sh(cmd: string, args: string[]) {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

async function connect(port: number) {
  return await mysql.createConnection({
    host: "127.0.0.1",
    port,
    user: "lab",
    password: "lab",
    connectTimeout: 1000,
  });
}

/**
 * Every 50 ms, opens a fresh connection through `port` and runs `probe` on it (each allowed 20 s);
 * resolves with the time the first probe returns true. Refused, severed or blocked attempts are
 * simply followed by the next one.
 */
function firstSuccess(
  port: number,
  probe: (c: mysql.Connection) => Promise<boolean>,
): { done: Promise<number>; stop: () => void } {
  let stopped = false;
  let resolve!: (t: number) => void;
  const done = new Promise<number>((r) => (resolve = r));
  const attempt = async () => {
    try {
      const c = await connect(port);
      try {
        if ((await probe(c)) && !stopped) {
          stopped = true;
          resolve(performance.now());
        }
      } finally {
        c.destroy();
      }
    } catch {
      // the next attempt follows
    }
  };
  const timer = setInterval(() => {
    if (stopped) return clearInterval(timer);
    void attempt();
  }, 50);
  return { done, stop: () => (stopped = true, clearInterval(timer)) };
}

/** The time of the first INSERT that succeeds through `port`. */
function firstWrite(port: number, tag: string) {
  let n = 0;
  return firstSuccess(port, async (c) => {
    await c.query({ sql: "INSERT INTO lab.failover (tag) VALUES (?)", timeout: 20_000 }, [
      `${tag}-${n++}`,
    ]);
    return true;
  });
}

/** The time a fresh connection through `port` first lands on a node other than `victimPort`. */
function firstReroute(port: number, victimPort: number) {
  return firstSuccess(port, async (c) => {
    const [rows] = await c.query({ sql: "SELECT @@port AS p", timeout: 20_000 });
    return (rows as { p: number }[])[0].p !== victimPort;
  });
}

async function routedPort(port: number): Promise<number> {
  return await waitFor("a node through the proxy", async () => {
    const c = await connect(port);
    try {
      const [rows] = await c.query("SELECT @@port AS p");
      return (rows as { p: number }[])[0].p;
    } finally {
      c.destroy();
    }
  }, 60_000);
}

/** HAProxy's single-writer idiom (first node, the others backups) with health checks every `inter`. */
function startBenchHaproxy(name: string, port: number, inter: string) {
  const child = startHaproxy(
    `/tmp/galerad-bench-${name}.cfg`,
    haproxyConfig({
      bind: `127.0.0.1:${port}`,
      maxconn: 4000,
      servers: labServers("127.0.0.1", [0, 1, 2].map((i) => L.port(i)), AGENT),
      check: { inter, rise: 1, fall: 2 },
      balance: "roundrobin",
      backend: ["option srvtcpka"],
      sections: `listen stats
  bind 127.0.0.1:${port + 1000}
  mode http
  stats enable
  stats uri /
`,
    }),
  );
  return { stop: () => child.kill("SIGKILL") };
}

interface Target {
  name: string;
  port: number;
}

async function oneRun(target: Target) {
  const victimPort = await routedPort(target.port);
  const victim = victimPort - L.port(0);
  const survivor = [0, 1, 2].find((i) => i !== victim)!;
  // The clock starts at the signal itself (not when the lab script returns: a killed server
  // takes a while to be reaped, and its sockets close before that).
  const pid = Number(readFileSync(path.join(L.dir, `node${victim}`, "mysqld.pid"), "utf8").trim());
  const killed = performance.now();
  process.kill(pid, "SIGKILL");
  const proxied = firstWrite(target.port, `${target.name}-proxy`);
  const direct = firstWrite(L.port(survivor), `${target.name}-direct`);
  const rerouted = firstReroute(target.port, victimPort);
  const cap = <T>(p: Promise<T>) =>
    Promise.race([p, new Promise<number>((r) => setTimeout(() => r(Number.NaN), 90_000))]);
  const [tProxy, tDirect, tRoute] = await Promise.all([
    cap(proxied.done),
    direct.done,
    cap(rerouted.done),
  ]);
  proxied.stop();
  direct.stop();
  rerouted.stop();
  await L.run("start", String(victim));
  await new Promise((r) => setTimeout(r, 3000)); // let every health checker see the node back
  return { proxy: tProxy - killed, direct: tDirect - killed, route: (tRoute as number) - killed };
}

/** One sentence with the before/after ratios of "first new session on a survivor". */
function beforeLine(results: Record<string, { route: number[] }>): string {
  const before = results["galerad-before"];
  if (!before) return "";
  const b = summary(before.route).median;
  const ratio = (name: string) => fmt(summary(results[name].route).median / b, 2);
  return ` Measured: galerad alone ${ratio("galerad")}×, the agents tier ${
    ratio("galerad-agents-tier")
  }× the first version's ${fmt(b)} ms.`;
}

async function soak(apiPort: number, proxyPort: number, seconds: number) {
  const auth = { Authorization: `Basic ${btoa("admin:bench-secret")}` };
  const before = await (await fetch(`http://127.0.0.1:${apiPort}/v0/cluster`, { headers: auth }))
    .json();
  const backendsBefore =
    await (await fetch(`http://127.0.0.1:${apiPort}/v0/backends`, { headers: auth })).json();
  const common = [
    "--db-driver=mysql",
    "--mysql-host=127.0.0.1",
    `--mysql-port=${proxyPort}`,
    "--mysql-user=lab",
    "--mysql-password=lab",
    "--mysql-db=lab",
    "--tables=4",
    "--table-size=10000",
    "--auto_inc=off",
  ];
  sh("sysbench", ["oltp_read_write", ...common, "cleanup"]);
  sh("sysbench", ["oltp_read_write", ...common, "prepare"]);
  const out = sh("sysbench", [
    "oltp_read_write",
    ...common,
    "--threads=8",
    `--time=${seconds}`,
    "--report-interval=0",
    "--mysql-ignore-errors=1213,1205",
    "run",
  ]);
  const after = await (await fetch(`http://127.0.0.1:${apiPort}/v0/cluster`, { headers: auth }))
    .json();
  const backendsAfter =
    await (await fetch(`http://127.0.0.1:${apiPort}/v0/backends`, { headers: auth })).json();
  const changed = backendsAfter.filter((b: { name: string; lastChange: string }) =>
    backendsBefore.find((x: { name: string }) => x.name === b.name)?.lastChange !== b.lastChange
  ).map((b: { name: string }) => b.name);
  const tps = Number(/transactions:\s+\d+\s+\(([\d.]+) per sec/.exec(out)?.[1] ?? "NaN");
  const errors = Number(/ignored errors:\s+(\d+)/.exec(out)?.[1] ?? "NaN");
  return {
    epochBefore: before.register.epoch,
    epochAfter: after.register.epoch,
    healthChanges: changed,
    tps,
    errors,
  };
}

async function main(cleanup: Cleanup) {
  execFileSync("bash", [path.join(ROOT, "scripts/setup.sh")], { stdio: "inherit" });
  execFileSync("bash", [path.join(ROOT, "compile.sh")], { stdio: "inherit" });
  await L.run("destroy");
  cleanup.add(() => L.run("destroy"));
  await L.run("up", "3");
  cleanup.add(async () => {
    for (const a of agents) await a.stop();
  });
  await L.sql(
    0,
    "CREATE TABLE lab.failover (id BIGINT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(64), at TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP(3))",
  );
  agents.push(
    ...await startLocalAgents(L, AGENT, [BIN], {
      // With the secret the agents also vote, for the --quorum agents tier below.
      extra: (i) => [
        "--vote-listen",
        `127.0.0.1:${AGENT + 100 + i}`,
        "--state-file",
        `/tmp/galerad-bench-agent${i}.json`,
      ],
      env: { GALERAD_PEER_SECRET: SECRET },
    }),
  );
  const galeradPort = await freePort();
  const apiPort = await freePort();
  const galerad = startDaemon([
    "proxy",
    "--listen",
    `127.0.0.1:${galeradPort}`,
    "--api-listen",
    `127.0.0.1:${apiPort}`,
    "--health-listen",
    "127.0.0.1:0",
    "--api-password",
    "bench-secret",
    ...backendArgs(),
  ], { command: [BIN] });
  cleanup.add(() => galerad.stop());
  await galerad.waitForLog("active node", (l) => typeof props(l).active === "string", 30_000);
  // The same binary as one of two proxies voting through the agents (--quorum agents), and,
  // with GALERAD_BEFORE_BIN, the first version's binary alone: the before/after comparison.
  const extra: Target[] = [];
  const peerPorts = [await freePort(), await freePort()];
  const tierPorts = [await freePort(), await freePort()];
  for (const [i, name] of ["q1", "q2"].entries()) {
    const d = startDaemon([
      "proxy",
      "--name",
      name,
      "--listen",
      `127.0.0.1:${tierPorts[i]}`,
      "--api-listen",
      "127.0.0.1:0",
      "--health-listen",
      "127.0.0.1:0",
      "--api-password",
      "bench-secret",
      "--quorum",
      "agents",
      "--peers",
      `q1=127.0.0.1:${peerPorts[0]},q2=127.0.0.1:${peerPorts[1]}`,
      "--state-file",
      `/tmp/galerad-bench-${name}.json`,
      ...backendArgs(),
    ], { command: [BIN], env: { GALERAD_PEER_SECRET: SECRET } });
    cleanup.add(() => d.stop());
    await d.waitForLog("active node", (l) => typeof props(l).active === "string", 30_000);
  }
  extra.push({ name: "galerad-agents-tier", port: tierPorts[0] });
  const before = process.env.GALERAD_BEFORE_BIN;
  if (before) {
    const port = await freePort();
    const d = startDaemon([
      "proxy",
      "--listen",
      `127.0.0.1:${port}`,
      "--api-listen",
      "127.0.0.1:0",
      "--health-listen",
      "127.0.0.1:0",
      "--api-password",
      "bench-secret",
      ...backendArgs(),
    ], { command: [before] });
    cleanup.add(() => d.stop());
    await d.waitForLog("active node", (l) => typeof props(l).active === "string", 30_000);
    extra.push({ name: "galerad-before", port });
  }
  const seedPort = await freePort();
  const tunedPort = await freePort();
  const seed = startBenchHaproxy("seed", seedPort, "10000");
  cleanup.add(() => seed.stop());
  const tuned = startBenchHaproxy("tuned", tunedPort, "1s");
  cleanup.add(() => tuned.stop());
  const targets: Target[] = [
    { name: "galerad", port: galeradPort },
    { name: "haproxy-tuned", port: tunedPort },
    { name: "haproxy-seed", port: seedPort },
    ...extra,
  ];
  const results: Record<
    string,
    { proxy: number[]; direct: number[]; share: number[]; route: number[] }
  > = {};
  await new Promise((r) => setTimeout(r, 2000));
  for (let run = 0; run < RUNS; run++) {
    for (const t of targets) {
      const r = await oneRun(t);
      const entry = (results[t.name] ??= { proxy: [], direct: [], share: [], route: [] });
      entry.route.push(r.route);
      entry.proxy.push(r.proxy);
      entry.direct.push(r.direct);
      entry.share.push(r.proxy - r.direct);
      console.log(
        `run ${run + 1} ${t.name}: rerouted ${fmt(r.route)} ms, write through proxy ${
          fmt(r.proxy)
        } ms, direct ${fmt(r.direct)} ms, proxy share ${fmt(r.proxy - r.direct)} ms`,
      );
    }
  }
  const soakResult = SOAK > 0 ? await soak(apiPort, galeradPort, SOAK) : null;
  if (soakResult) console.log(`soak ${SOAK}s:`, JSON.stringify(soakResult));
  const g = summary(results.galerad.share);
  const rows = targets.map((t) => {
    const r = results[t.name];
    const p = summary(r.proxy), d = summary(r.direct), s = summary(r.share), q = summary(r.route);
    return `| ${t.name} | ${fmt(q.median)} (${fmt(q.min)}–${fmt(q.max)}) | ${fmt(p.median)} (${
      fmt(p.min)
    }–${fmt(p.max)}) | ${fmt(d.median)} (${fmt(d.min)}–${fmt(d.max)}) | ${fmt(s.median)} (${
      fmt(s.min)
    }–${fmt(s.max)}) | ${
      t.name === "galerad" ? "1.00×" : `${fmt(s.median / Math.max(g.median, 1), 1)}×`
    } |`;
  });
  writeSection(
    "failover",
    `
## Failover: kill -9 of the active node on the Galera lab

\`node_modules/.bin/bun scripts/bench/failover.ts --runs ${RUNS}${
      SOAK ? ` --soak ${SOAK}` : ""
    }\` — ${new Date().toISOString().slice(0, 10)}; ${machine()}.

Three nodes (Galera defaults: evs.suspect_timeout 5 s), one \`galerad healthcheck\` per node, and
in front of them, side by side: galerad (compiled binary, defaults: probe every 500 ms, fall 2),
HAProxy 2.6 as seed 004 configures it (\`check inter 10000 rise 1 fall 2\`, one server and two
backups, \`on-marked-down shutdown-sessions\`, the agent's \`GET /\` as \`httpchk\`) and the same
HAProxy tuned to \`inter 1s\`. Each run kills the node the target routes to and times, from the
kill, the first successful INSERT through the target and, in the same run, directly on a
surviving node (write attempts every 50 ms on fresh connections). Milliseconds, median (min–max)
over ${RUNS} runs per target. "First new session on a survivor" is when a fresh connection through
the target first lands on another node (a read, which Galera does not block): the proxy's
detection time on its own. The proxy's own share is the first minus the second; the last column
is that share as a multiple of galerad's (the same run's baseline). Target: galerad's share ≤ 500 ms
median.

Also in the same runs: \`galerad-agents-tier\` is one of two galerad proxies agreeing through the
agents' votes (\`--quorum agents\`, leases, confirmed severs: docs/peers.md), and
\`galerad-before\` (when \`GALERAD_BEFORE_BIN\` names it) is the binary of the first version, before
the agreement core, alone in front of the same agents. Target: the first new session on a
survivor no later than 1.2× the first version's median.${beforeLine(results)}

| target | first new session on a survivor | first write through it | first write direct | proxy's own share | share vs galerad |
| --- | --- | --- | --- | --- | --- |
${rows.join("\n")}
${
      soakResult
        ? `
No false failover under load: ${SOAK} s of \`sysbench oltp_read_write\` (8 threads, 4×10,000 rows)
through galerad at ${
          fmt(soakResult.tps, 1)
        } tps: register epoch ${soakResult.epochBefore} before and ${soakResult.epochAfter} after, backends whose health changed: ${
          soakResult.healthChanges.length ? soakResult.healthChanges.join(", ") : "none"
        }; errors sysbench ignored (1213/1205; on one node these are InnoDB lock conflicts between its own threads, which oltp_read_write produces direct too): ${soakResult.errors}.
`
        : ""
    }`,
  );
}

await runBench(main);
