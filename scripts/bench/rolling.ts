/**
 * A rolling restart under load, as operators run one: a 3-node Galera lab, three proxies with
 * peers, and a TCP load balancer in front of them (HAProxy, health-checking each proxy). Two
 * workloads run throughout: short-lived connections that each run one short transaction, and
 * pooled connections that reconnect when closed while idle. Phases: each Galera node restarted
 * in turn through the maintenance recipe (`galerad maintenance --enable --wait`, stop, start,
 * `--disable`), each proxy restarted in turn (SIGTERM, then a fresh start), each proxy reloaded
 * with a changed config. Failed connection attempts and failed transactions are counted per
 * phase. The same run with seed 004's HAProxy-with-peers tier in place of the galerad tier is the
 * baseline.
 *
 *   node_modules/.bin/bun scripts/bench/rolling.ts [--settle 3]
 *
 * Writes the "rolling" section of docs/BENCHMARKS.md.
 */
import process from "node:process";
import { execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import mysql from "mysql2/promise";
import { waitFor } from "../lab/fixtures.ts";
import { connect as connectLab, lab } from "../lab/lab.ts";
import { type Daemon, startDaemon } from "../lab/spawn.ts";
import { benchOptions, type Cleanup, machine, ROOT, runBench, writeSection } from "./report.ts";
import { haproxyConfig, labServers, startLocalAgents } from "./topology.ts";

const OPTIONS = benchOptions("rolling.ts [--settle 3]", { settle: { fallback: 3, min: 0 } });
const BIN = path.join(ROOT, "galerad");
const L = lab({ dir: "/tmp/galerad-rolling-lab", port: 23306, galeraPort: 23567 });
const AGENT = 23400; // + i: agents' HTTP
const VOTE = 23410; // + i: agents' votes
const TIER = 23420; // + p: the tier's client ports
const HEALTH = 23430; // + p: the tier's health ports (/ready)
const API = 23440; // + p: galerad's API
const PEER = 23450; // + p: peers (galerad) or HAProxy peers
const FRONT = 23460; // the load balancer's client port
const SECRET = "rolling-bench-peer-secret-0123456789";
const PASSWORD = "bench-secret";
const auth = { Authorization: `Basic ${btoa(`admin:${PASSWORD}`)}` };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** With ROLLING_DEBUG=1: every failure and step with its time, and the proxies' warnings. */
const DEBUG = process.env.ROLLING_DEBUG === "1";
const timeline: { at: number; what: string }[] = [];
const mark = (what: string) => timeline.push({ at: Date.now(), what });

interface Counts {
  connectFailures: number;
  txFailures: number;
  ok: number;
  reconnects: number;
  errors: Map<string, number>;
}
const counts = (): Counts => ({
  connectFailures: 0,
  txFailures: 0,
  ok: 0,
  reconnects: 0,
  errors: new Map(),
});

/** The two workloads, counting into whichever phase is current. */
function workload(port: number) {
  let phase = counts();
  let stop = false;
  const note = (c: Counts, error: unknown) => {
    const e = error as { code?: string; errno?: number; message?: string };
    const key = `${e.errno ?? e.code ?? "?"} ${String(e.message ?? "").slice(0, 60)}`;
    c.errors.set(key, (c.errors.get(key) ?? 0) + 1);
    mark(`FAILED ${key}`);
  };
  const connect = () => connectLab(port, { connectTimeout: 10_000, database: undefined });
  // (a) One connection, one short transaction, closed.
  const short = async () => {
    while (!stop) {
      const c = phase;
      let conn: mysql.Connection;
      try {
        conn = await connect();
      } catch (error) {
        c.connectFailures++;
        note(c, error);
        await sleep(50);
        continue;
      }
      try {
        await conn.beginTransaction();
        await conn.query("UPDATE lab.hot SET v = v + 1 WHERE id = ?", [
          1 + Math.floor(Math.random() * 8),
        ]);
        await conn.commit();
        c.ok++;
      } catch (error) {
        c.txFailures++;
        note(c, error);
      } finally {
        conn.destroy();
      }
      await sleep(20);
    }
  };
  // (b) A pooled connection: used every 100 ms; closed while idle, it reconnects (no error).
  const pooled = async () => {
    let conn: mysql.Connection | null = null;
    let closed = true;
    while (!stop) {
      const c = phase;
      if (closed) {
        try {
          conn = await connect();
          closed = false;
          const mine = conn;
          const gone = () => {
            if (conn === mine) closed = true;
          };
          mine.on("end", gone);
          mine.on("error", gone);
        } catch (error) {
          c.connectFailures++;
          note(c, error);
          await sleep(100);
          continue;
        }
      }
      try {
        await conn!.query("UPDATE lab.hot SET v = v + 1 WHERE id = ?", [
          9 + Math.floor(Math.random() * 8),
        ]);
        c.ok++;
      } catch (error) {
        if (closed) c.reconnects++; // closed while idle, seen as it was used: the pool's reconnect
        else {
          c.txFailures++;
          note(c, error);
        }
        conn?.destroy();
        closed = true;
      }
      await sleep(100);
    }
    conn?.destroy();
  };
  const done = Promise.all([
    ...Array.from({ length: 4 }, short),
    ...Array.from({ length: 8 }, pooled),
  ]);
  return {
    /** Starts counting into a new phase; returns the one that ended. */
    next: () => {
      const ended = phase;
      phase = counts();
      return ended;
    },
    stop: async () => {
      stop = true;
      await done;
      return phase;
    },
  };
}

/** The load balancer in front of the tier: it sends clients only to proxies whose check passes. */
function frontConfig(check: (p: number) => string): string {
  const servers = [0, 1, 2].map((p) => `  server t${p} 127.0.0.1:${TIER + p} ${check(p)}`);
  return `global
  maxconn 4000
${DEBUG ? "  log stdout format raw local0 info\n" : ""}defaults
  mode tcp
${DEBUG ? "  log global\n  option tcplog\n" : ""}  timeout connect 2s
  timeout client 1h
  timeout server 1h
frontend front
  bind 127.0.0.1:${FRONT}
  default_backend tier
backend tier
  balance roundrobin
${servers.join("\n")}
`;
}

/** Seed 004's HAProxy-with-peers proxy: one stick-table entry replicated between the three. */
function seedConfig(p: number): string {
  return haproxyConfig({
    bind: `127.0.0.1:${TIER + p}`,
    maxconn: 4000,
    servers: labServers("127.0.0.1", [0, 1, 2].map((i) => L.port(i)), AGENT)
      .map((server) => ({ ...server, extra: "weight 1" })),
    check: { inter: 10000, rise: 1, fall: 2 },
    balance: "roundrobin",
    global: [
      `localpeer h${p}`,
      "# A soft stop or reload ends within the same 5 s as galerad's --shutdown-timeout.",
      "hard-stop-after 5s",
    ],
    backend: ["option srvtcpka", "stick-table type integer size 1 peers tier", "stick on int(1)"],
    sections: `peers tier
${[0, 1, 2].map((i) => `  peer h${i} 127.0.0.1:${PEER + i}`).join("\n")}
frontend health
  mode http
  bind 127.0.0.1:${HEALTH + p}
  monitor-uri /ready
`,
  });
}

interface Tier {
  name: string;
  restart(p: number): Promise<void>;
  reload(p: number): Promise<void>;
  /** The node each proxy routes to now (null: none or unknown). */
  routes(): Promise<(string | null)[]>;
  stop(): Promise<void>;
}

function galeradTier(cleanup: Cleanup): Tier {
  const procs: (Daemon | null)[] = [null, null, null];
  const past: Daemon[] = [];
  const config = (p: number, interval: string) => {
    const file = `/tmp/galerad-rolling-p${p}.yaml`;
    writeFileSync(
      file,
      [
        `name: p${p}`,
        `listen: 127.0.0.1:${TIER + p}`,
        `api-listen: 127.0.0.1:${API + p}`,
        `health-listen: 127.0.0.1:${HEALTH + p}`,
        `api-password: ${PASSWORD}`,
        `peers: ${[0, 1, 2].map((i) => `p${i}=127.0.0.1:${PEER + i}`).join(",")}`,
        "quorum: agents",
        `state-file: /tmp/galerad-rolling-p${p}.state.json`,
        `interval: ${interval}`,
        "shutdown-delay: 3s",
        "shutdown-timeout: 5s",
        `log-level: ${DEBUG ? "info" : "warning"}`,
        "backends:",
        ...[0, 1, 2].map((i) =>
          `  - node${i}=127.0.0.1:${L.port(i)},health=http://127.0.0.1:${AGENT + i}`
        ),
      ].join("\n") + "\n",
    );
    return file;
  };
  const start = (p: number) => {
    const d = startDaemon(["proxy", "--config", config(p, "300ms")], {
      command: [BIN],
      env: { GALERAD_PEER_SECRET: SECRET, GALERAD_SHUTDOWN_DELAY: "3s" },
    });
    procs[p] = d;
    cleanup.add(() => d.stop("SIGKILL"));
  };
  const ready = (p: number) =>
    waitFor(
      `p${p} ready`,
      async () =>
        (await fetch(`http://127.0.0.1:${HEALTH + p}/ready`).catch(() => null))?.status === 200,
      60_000,
    );
  for (let p = 0; p < 3; p++) start(p);
  return {
    name: "galerad (3 proxies, --quorum agents)",
    async restart(p) {
      if (DEBUG) past.push(procs[p]!);
      await procs[p]!.stop("SIGTERM");
      start(p);
      await ready(p);
    },
    async reload(p) {
      const before =
        await (await fetch(`http://127.0.0.1:${API + p}/v0/cluster`, { headers: auth })).json();
      config(p, "250ms");
      procs[p]!.child.kill("SIGHUP");
      await waitFor(`p${p} reloaded`, async () => {
        const c = await (await fetch(`http://127.0.0.1:${API + p}/v0/cluster`, { headers: auth }))
          .json();
        return c.config.generation > before.config.generation;
      }, 10_000);
    },
    async routes() {
      return await Promise.all([0, 1, 2].map(async (p) => {
        const r = await fetch(`http://127.0.0.1:${API + p}/v0/cluster`, { headers: auth }).catch(
          () => null,
        );
        return r?.ok ? ((await r.json()).activeBackend as string | null) : null;
      }));
    },
    async stop() {
      for (const d of procs) await d?.stop();
      if (!DEBUG) return;
      for (const [i, d] of [...past, ...procs].entries()) {
        for (const l of d!.logs()) {
          mark.call(null, `proxy log ${i}: ${String(l.message).slice(0, 160)}`);
          timeline[timeline.length - 1].at = Date.parse(String(l["@timestamp"]));
        }
      }
    },
  };
}

function seedTier(cleanup: Cleanup): Tier {
  const procs: (ReturnType<typeof spawn> | null)[] = [null, null, null];
  const file = (p: number) => `/tmp/galerad-rolling-h${p}.cfg`;
  const start = (p: number, replace?: number) => {
    writeFileSync(file(p), seedConfig(p));
    const child = spawn("haproxy", [
      "-db",
      "-f",
      file(p),
      ...(replace ? ["-sf", String(replace)] : []),
    ], {
      stdio: "ignore",
    });
    procs[p] = child;
    cleanup.add(() => child.kill("SIGKILL"));
  };
  const ready = (p: number) =>
    waitFor(
      `h${p} ready`,
      async () =>
        (await fetch(`http://127.0.0.1:${HEALTH + p}/ready`).catch(() => null))?.status === 200,
      60_000,
    );
  for (let p = 0; p < 3; p++) start(p);
  return {
    name: "HAProxy with peers (seed 004)",
    async restart(p) {
      // A soft stop (SIGUSR1): listeners close, sessions finish; then a fresh start.
      const old = procs[p]!;
      old.kill("SIGUSR1");
      await new Promise((r) => old.once("exit", r));
      start(p);
      await ready(p);
    },
    async reload(p) {
      // HAProxy's reload: a new process takes over with -sf, the old one finishes its sessions.
      start(p, procs[p]!.pid);
      await ready(p);
      await sleep(500);
    },
    routes: () => Promise.resolve([null, null, null]),
    async stop() {
      for (const c of procs) {
        if (!c || c.exitCode !== null) continue;
        c.kill("SIGTERM");
        await new Promise((r) => c.once("exit", r));
      }
    },
  };
}

async function rolling(tier: Tier) {
  const load = workload(FRONT);
  const phases: [string, Counts][] = [];
  const settle = () => sleep(OPTIONS.settle * 1000);
  await settle();
  load.next();
  for (let i = 0; i < 3; i++) {
    execFileSync(BIN, [
      "maintenance",
      "--agent",
      `http://127.0.0.1:${AGENT + i}`,
      "--api-password",
      PASSWORD,
      "--enable",
      "rolling restart",
      "--wait",
      "--timeout",
      "60s",
    ], { stdio: "ignore" });
    mark(`node${i}: maintenance on, sessions gone`);
    await L.run("stop", String(i));
    mark(`node${i}: stopped`);
    await L.run("start", String(i));
    mark(`node${i}: started`);
    execFileSync(BIN, [
      "maintenance",
      "--agent",
      `http://127.0.0.1:${AGENT + i}`,
      "--api-password",
      PASSWORD,
      "--disable",
    ], { stdio: "ignore" });
    await waitFor(
      `node${i} healthy`,
      async () => (await fetch(`http://127.0.0.1:${AGENT + i}/`).catch(() => null))?.status === 200,
      60_000,
    );
    await settle();
  }
  phases.push(["Galera nodes, each through the maintenance recipe", load.next()]);
  for (let p = 0; p < 3; p++) {
    mark(`proxy ${p}: restart`);
    await tier.restart(p);
    mark(`proxy ${p}: ready again`);
    await settle();
  }
  phases.push(["proxies, each SIGTERM then a fresh start", load.next()]);
  for (let p = 0; p < 3; p++) {
    mark(`proxy ${p}: reload`);
    await tier.reload(p);
    await settle();
  }
  phases.push(["proxies, each reloaded with a changed config", load.next()]);
  await load.stop();
  return phases;
}

async function main(cleanup: Cleanup) {
  execFileSync("bash", [path.join(ROOT, "scripts/setup.sh")], { stdio: "inherit" });
  execFileSync("bash", [path.join(ROOT, "compile.sh")], { stdio: "inherit" });
  await L.run("destroy");
  cleanup.add(() => L.run("destroy"));
  await L.run("up", "3");
  await L.sql(0, "CREATE TABLE IF NOT EXISTS lab.hot (id INT PRIMARY KEY, v INT NOT NULL)");
  await L.sql(
    0,
    `REPLACE INTO lab.hot VALUES ${
      Array.from({ length: 16 }, (_, i) => `(${i + 1}, 0)`).join(",")
    }`,
  );
  const agents: Daemon[] = [];
  cleanup.add(async () => {
    for (const a of agents) await a.stop();
  });
  agents.push(
    ...await startLocalAgents(L, AGENT, [BIN], {
      extra: (i) => [
        "--interval",
        "200ms",
        "--api-password",
        PASSWORD,
        "--vote-listen",
        `127.0.0.1:${VOTE + i}`,
        "--state-file",
        `/tmp/galerad-rolling-agent${i}.json`,
      ],
      env: { GALERAD_PEER_SECRET: SECRET },
    }),
  );
  const results: [string, [string, Counts][]][] = [];
  // ROLLING_ONLY=galerad skips the baseline (for a quick look; the report wants both).
  const tiers = process.env.ROLLING_ONLY === "galerad" ? [galeradTier] : [galeradTier, seedTier];
  for (const make of tiers) {
    const tier = make(cleanup);
    const frontFile = "/tmp/galerad-rolling-front.cfg";
    writeFileSync(
      frontFile,
      frontConfig((p) => `check port ${HEALTH + p} inter 500 fall 1 rise 2`).replace(
        "  balance roundrobin",
        "  balance roundrobin\n  option httpchk GET /ready",
      ),
    );
    const front = spawn("haproxy", ["-db", "-f", frontFile], {
      stdio: ["ignore", DEBUG ? "pipe" : "ignore", DEBUG ? "pipe" : "ignore"],
    });
    const note = (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n")) {
        // Only what is not a plain success: checks, downs, retries, errors.
        if (line && !/ -- 0\/|[+]?\d+ -- $/.test(line) && !/ -- \d/.test(line)) mark(`LB ${line}`);
        else if (line && !line.includes(" -- ")) mark(`LB ${line}`);
      }
    };
    front.stdout?.on("data", note);
    front.stderr?.on("data", note);
    cleanup.add(() => front.kill("SIGKILL"));
    await waitFor("the tier ready behind the front", async () => {
      for (let p = 0; p < 3; p++) {
        if (
          (await fetch(`http://127.0.0.1:${HEALTH + p}/ready`).catch(() => null))?.status !== 200
        ) {
          return false;
        }
      }
      return true;
    }, 60_000);
    await sleep(2000);
    console.log(`== ${tier.name}`);
    const phases = await rolling(tier);
    for (const [name, c] of phases) {
      console.log(
        `${name}: ${c.connectFailures} failed connects, ${c.txFailures} failed transactions, ${c.ok} ok, ${c.reconnects} idle reconnects; ${
          [...c.errors].map(([k, n]) => `${n}× ${k}`).join("; ")
        }`,
      );
    }
    results.push([tier.name, phases]);
    front.kill("SIGTERM");
    await tier.stop();
    if (DEBUG) {
      timeline.sort((a, b) => a.at - b.at);
      for (const t of timeline) console.log(new Date(t.at).toISOString().slice(11, 23), t.what);
      timeline.length = 0;
    }
    await sleep(1000);
  }
  const rows = results.flatMap(([tier, phases]) =>
    phases.map(([phase, c]) =>
      `| ${tier} | ${phase} | ${c.connectFailures} | ${c.txFailures} | ${c.ok} | ${c.reconnects} | ${
        [...c.errors].map(([k, n]) => `${n}× ${k.replace(/\|/g, "/")}`).join("; ") || "—"
      } |`
    )
  );
  writeSection(
    "rolling",
    `
## Rolling restart under load

\`node_modules/.bin/bun scripts/bench/rolling.ts --settle ${OPTIONS.settle}\` — ${
      new Date().toISOString().slice(0, 10)
    }; ${machine()}.

A 3-node Galera lab; three proxies; in front of them HAProxy 2.6 as the load balancer, sending
clients only to proxies whose \`/ready\` answers 200 (\`inter 500 fall 1 rise 2\`). Load
throughout: 4 workers opening a connection per short transaction (BEGIN, one UPDATE, COMMIT,
close) and 8 pooled connections running an UPDATE every 100 ms, which reconnect without error
when their connection was closed while idle ("idle reconnects"). Phases: each Galera node in
turn through the maintenance recipe (\`galerad maintenance --enable --wait\`, stop, start,
\`--disable\`); each proxy in turn stopped with SIGTERM and started afresh (galerad:
\`--shutdown-delay 3s\`; HAProxy: a soft stop, SIGUSR1); each proxy reloaded with a changed
config (galerad: SIGHUP; HAProxy: a new process with \`-sf\`). ${OPTIONS.settle} s of load between
steps. Target: zero failed connects and zero failed transactions in every phase. The baseline is
seed 004's HAProxy-with-peers tier (one stick-table entry replicated by peers, \`check inter
10000 rise 1 fall 2\`, \`on-marked-down shutdown-sessions\`) behind the same load balancer, its
health port a \`monitor-uri\`.

| tier | phase | failed connects | failed transactions | ok | idle reconnects | errors seen |
| --- | --- | --- | --- | --- | --- | --- |
${rows.join("\n")}
`,
  );
}

await runBench(main);
