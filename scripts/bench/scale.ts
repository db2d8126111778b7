/**
 * Sessions at scale, galerad (compiled binary) and HAProxy side by side in one run, both in front
 * of the same two test backends (a greeting and an echo, in their own process) with the same
 * descriptor limit: RSS with 1,000 / 5,000 / 10,000 idle sessions; a failover (the active node's
 * agent turns unhealthy) with the largest size, timing the sever; then one with STORM sessions
 * whose clients all reconnect at once: how long until all are served again, how many failed, how
 * many SYNs a full listen queue dropped.
 *
 *   node_modules/.bin/bun scripts/bench/scale.ts [--storm 5000] [--storm-only]
 *
 * Re-runs itself with a descriptor limit of 24,000 (root may raise it; anyone else keeps the hard
 * limit); the largest size is what that limit allows (two descriptors per session in the proxy).
 * Writes the "scale" section of docs/BENCHMARKS.md.
 */
import process from "node:process";
import { execFileSync, spawnSync } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { now, startBackendProcess } from "../lab/backend_process.ts";
import { startAgent } from "../lab/fixtures.ts";
import { startDaemon } from "../lab/spawn.ts";
import {
  benchOptions,
  type Cleanup,
  fmt,
  machine,
  median,
  ROOT,
  runBench,
  writeSection,
} from "./report.ts";
import { listenDrops } from "./kernel_counters.ts";
import { startStormClient } from "./storm_client.ts";
import { rssMiB } from "./memory.ts";
import { cpuSeconds } from "./sysbench.ts";
import { threadSplit, threadTimes } from "./thread_times.ts";
import { haproxyConfig, startHaproxy } from "./topology.ts";

/** The descriptor limit the bench, galerad and HAProxy all run with, when it may be raised. */
const FD_LIMIT = 24_000;
if (process.env.GALERAD_SCALE_LIMIT !== "1") {
  const r = spawnSync("bash", [
    "-c",
    // Root raises the limit so that 10,000 sessions fit (two descriptors each in the proxy);
    // anyone else gets the hard limit, and the largest size shrinks to it.
    `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`,
    process.execPath,
    ...process.argv.slice(1),
  ], {
    stdio: "inherit",
    env: { ...process.env, GALERAD_SCALE_LIMIT: "1" },
  });
  process.exit(r.status ?? 1);
}

const OPTIONS = benchOptions(
  "scale.ts [--storm 5000] [--storm-only]",
  { storm: { fallback: 5000, min: 100 } },
  ["storm-only"],
);
const BIN = path.join(ROOT, "galerad");
/** Each session holds two descriptors in the proxy and two here (client, backend). */
const LIMIT = Number(execFileSync("bash", ["-c", "ulimit -n"], { encoding: "utf8" }).trim());
const SIZES = [1000, 5000, Math.min(10_000, Math.floor((LIMIT - 1000) / 2))];
const GALERAD = 24610;
const HAPROXY = 24611;
const GALERAD_API = 24612;
/** Storms measured per proxy, in alternating order. */
const STORM_ROUNDS = 5;
/** Sessions of the failover and storm each proxy goes through before the measured ones. */
const WARM_UP = 1000;
/** When an idle proxy is read: after galerad's collection of a burst's garbage (dataplane/memory.ts). */
const SETTLE_MS = 8000;
/** How long an idle proxy's CPU is read for, at rest and with each size open. */
const IDLE_CPU_MS = 5000;

/** Opens `n` clients (in batches), each waiting for its greeting; resolves with the sockets. */
async function open(port: number, n: number): Promise<{ socks: net.Socket[]; greeting: string }> {
  const socks: net.Socket[] = [];
  let greeting = "";
  for (let i = 0; i < n; i += 200) {
    const batch = await Promise.all(
      Array.from(
        { length: Math.min(200, n - i) },
        () =>
          new Promise<net.Socket>((resolve, reject) => {
            const s = net.connect({ host: "127.0.0.1", port });
            s.once("data", (d) => (greeting ||= String(d).trim(), resolve(s)));
            s.once("error", reject);
          }),
      ),
    );
    socks.push(...batch);
  }
  return { socks, greeting };
}

/** No step waits longer than this. */
const STEP_LIMIT_MS = 30_000;
const TIMED_OUT = Symbol("timed out");
function bounded<T>(p: Promise<T>): Promise<T | typeof TIMED_OUT> {
  return Promise.race([
    p,
    new Promise<typeof TIMED_OUT>((r) => setTimeout(() => r(TIMED_OUT), STEP_LIMIT_MS)),
  ]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Target {
  name: string;
  port: number;
  pid(): number | undefined;
  /** The proxy's own sever figure (decision to last close, ms), for the sever since the last call. */
  severMs?(): Promise<number | null>;
}

async function main(cleanup: Cleanup) {
  execFileSync("bash", [path.join(ROOT, "compile.sh")], { stdio: "inherit" });
  const backends = await startBackendProcess(["db0", "db1"]);
  const db = backends.backends;
  const agents = [
    await startAgent({ healthy: true, index: 0 }),
    await startAgent({ healthy: true, index: 1 }),
  ];
  cleanup.add(async () => {
    await backends.close();
    for (const a of agents) await a.close();
  });
  const galerad = startDaemon([
    "proxy",
    "--listen",
    `127.0.0.1:${GALERAD}`,
    "--api-listen",
    `127.0.0.1:${GALERAD_API}`,
    "--health-listen",
    "127.0.0.1:0",
    "--api-password",
    "bench-secret",
    "--interval",
    "100ms",
    "--fall",
    "1",
    "--log-level",
    "warning",
    ...db.flatMap((b, i) => ["--backend", `${b.name}=127.0.0.1:${b.port},health=${agents[i].url}`]),
  ], { command: [BIN] });
  cleanup.add(() => galerad.stop());
  const maxconn = Math.floor(LIMIT / 2) - 100;
  const haproxy = startHaproxy(
    "/tmp/galerad-scale-haproxy.cfg",
    haproxyConfig({
      bind: `127.0.0.1:${HAPROXY}`,
      maxconn,
      // As galerad's probe timeout (--timeout 1s): without it a check times out at `inter`, and a
      // busy moment of the test agents marks the only healthy server down.
      defaults: [`maxconn ${maxconn}`, "timeout check 1s"],
      servers: db.map((b, i) => ({
        name: b.name,
        host: "127.0.0.1",
        port: b.port,
        checkPort: Number(new URL(agents[i].url).port),
        backup: i > 0,
      })),
      check: { inter: 100, rise: 1, fall: 1 },
    }),
  );
  cleanup.add(() => haproxy.kill("SIGKILL"));
  const clients = await startStormClient();
  cleanup.add(() => clients.close());
  await sleep(3000);
  let severSum = 0;
  const targets: Target[] = [
    {
      name: "galerad",
      port: GALERAD,
      pid: () => galerad.child.pid,
      async severMs() {
        const text = await (await fetch(`http://127.0.0.1:${GALERAD_API}/metrics`, {
          headers: { Authorization: `Basic ${btoa("admin:bench-secret")}` },
        })).text();
        const sum = Number(/^galerad_sever_seconds_sum (\S+)$/m.exec(text)?.[1]);
        const ms = (sum - severSum) * 1000;
        severSum = sum;
        return Number.isFinite(ms) && ms > 0 ? ms : null;
      },
    },
    { name: "haproxy", port: HAPROXY, pid: () => haproxy.pid },
  ];
  const idle: string[] = [];
  /** CPU of `t` over IDLE_CPU_MS while nothing happens, in % of one core. */
  const idleCpu = async (t: Target) => {
    const cpu0 = cpuSeconds(t.pid());
    await sleep(IDLE_CPU_MS);
    return fmt(((cpuSeconds(t.pid()) - cpu0) * 100_000) / IDLE_CPU_MS, 1);
  };
  // --storm-only: the storm alone, printed and not written (a quick check while working on it).
  for (const t of OPTIONS["storm-only"] ? [] : targets) {
    const base = { rss: rssMiB(t.pid()), anon: rssMiB(t.pid(), "RssAnon") };
    idle.push(`| ${t.name} | at rest | ${fmt(base.rss, 1)} | | | | | | ${await idleCpu(t)} |`);
    let previous: { n: number; rss: number; anon: number } | null = null;
    for (const n of SIZES) {
      const { socks } = await open(t.port, n);
      await sleep(2000);
      const burst = rssMiB(t.pid());
      await sleep(SETTLE_MS - 2000);
      const now = { n, rss: rssMiB(t.pid()), anon: rssMiB(t.pid(), "RssAnon") };
      const per = (mib: number, from: number, sessions: number) =>
        fmt(((mib - from) * 1024) / sessions, 1);
      // Growth from the previous size: what one more session costs, without the fixed part.
      const step = (part: "rss" | "anon") =>
        previous ? per(now[part], previous[part], n - previous.n) : "";
      idle.push(
        `| ${t.name} | ${n} | ${fmt(now.rss, 1)} | ${per(now.rss, base.rss, n)} | ${
          step("rss")
        } | ${per(now.anon, base.anon, n)} | ${step("anon")} | ${
          per(burst, base.rss, n)
        } | ${await idleCpu(t)} |`,
      );
      previous = now;
      for (const s of socks) s.destroy();
      await sleep(2000);
    }
  }
  console.log(idle.join("\n"));

  /**
   * `n` sessions on the active node, its agent turns unhealthy: the sever as the backends saw it
   * (first to last close, and from the health change to the last close), and as the proxy saw
   * it; with `reconnect`, every client then reconnects at once.
   */
  async function failover(
    t: Target,
    n: number,
    reconnect: boolean,
  ): Promise<{ line: string; served: number | null; drops: number }> {
    for (const a of agents) a.set({ healthy: true });
    await sleep(1500);
    await t.severMs?.();
    const { socks, greeting } = await open(t.port, n);
    const from = db.findIndex((b) => greeting === `hello ${b.name}`);
    const next = db[1 - from].name;
    await backends.closes();
    const cpu0 = cpuSeconds(t.pid());
    const drops0 = listenDrops();
    let neverClosed = n;
    const changed = now();
    // Every wait is bounded: a step that hangs says what it was waiting for instead.
    await Promise.all([
      ...socks.map((s) =>
        bounded(new Promise<void>((r) => s.once("close", () => (neverClosed--, r()))))
      ),
      Promise.resolve().then(() => agents[from].set({ healthy: false })),
    ]);
    const closes = await backends.closes(n - neverClosed);
    const proxySide = await t.severMs?.();
    for (const s of socks) s.destroy();
    let line = `sever of ${n}: ${
      fmt(closes.last - closes.first)
    } ms first to last close at the node, ${
      fmt(closes.last - changed)
    } ms from the health change to the last${
      proxySide ? `, ${fmt(proxySide)} ms from the proxy's decision to its last close` : ""
    }${
      neverClosed ? `, ${neverClosed} clients never closed within ${STEP_LIMIT_MS / 1000} s` : ""
    }`;
    const cpuSever = cpuSeconds(t.pid());
    const threadsBefore = reconnect ? threadTimes(t.pid()) : null;
    let servedAll: number | null = null;
    let stormDrops = 0;
    if (reconnect) {
      const { servedAt, why, wrongNode, stuck } = await clients.storm({
        port: t.port,
        n,
        expect: `hello ${next}`,
        limitMs: STEP_LIMIT_MS,
      });
      const failed = Object.values(why).reduce((sum, k) => sum + k, 0);
      const reasons = Object.entries(why).map(([k, v]) =>
        `${v} ${k === "closed" ? "closed before the greeting" : k}`
      );
      // The client process's last greeting, not this process's reading of its answer.
      const served = servedAt.at(-1) ?? 0;
      if (failed + stuck === 0) servedAll = served;
      const at = (q: number) =>
        fmt(servedAt[Math.min(servedAt.length - 1, Math.floor(q * servedAt.length))]);
      stormDrops = listenDrops() - drops0;
      line += `; all ${n} served again in ${fmt(served)} ms (a tenth by ${at(0.1)}, half by ${
        at(0.5)
      }, nine tenths by ${at(0.9)}), ${failed} failed${
        reasons.length ? ` (${reasons.join(", ")})` : ""
      }, ${wrongNode} on the old node, ${stuck} unanswered within ${STEP_LIMIT_MS / 1000} s, ${
        listenDrops() - drops0
      } SYNs dropped by a full listen queue`;
    }
    const storm = threadsBefore
      ? `, ${fmt((cpuSeconds(t.pid()) - cpuSever) * 1000)} ms for the storm (${
        threadSplit(threadsBefore, threadTimes(t.pid()))
      })`
      : "";
    line += `; proxy CPU ${fmt((cpuSever - cpu0) * 1000)} ms for the sever${storm}`;
    console.log(t.name, line);
    agents[from].set({ healthy: true });
    await sleep(2000);
    // galerad does not fail back; HAProxy does (db0 is its primary): the next step asks which.
    return { line, served: servedAll, drops: stormDrops };
  }

  const failovers: Record<string, string[]> = {};
  // A proxy in production met its code paths long before a failover; one started a few seconds
  // ago has not, and galerad's runtime would spend the first one compiling them. So each proxy
  // goes through one smaller failover and storm first, not measured (HAProxy likewise).
  for (const t of targets) {
    console.log(`${t.name}: warm-up (not measured)`);
    await failover(t, WARM_UP, true);
  }
  if (OPTIONS["storm-only"]) {
    for (const t of targets) await failover(t, OPTIONS.storm, true);
    return;
  }
  for (const t of targets) {
    failovers[t.name] = [(await failover(t, SIZES[SIZES.length - 1], false)).line];
  }
  // Storms in rounds, the order alternating: one storm's time moves with the machine by a third
  // from run to run, so the ratio quoted is the median of the rounds' ratios.
  const served: Record<string, number[]> = {};
  const ratios: number[] = [];
  const roundRatios: string[] = [];
  for (let round = 0; round < STORM_ROUNDS; round++) {
    const times: Record<string, number | null> = {};
    const dropped: string[] = [];
    for (const t of round % 2 ? [...targets].reverse() : targets) {
      const { line, served: ms, drops } = await failover(t, OPTIONS.storm, true);
      failovers[t.name].push(`round ${round + 1}: ${line}`);
      times[t.name] = ms;
      if (ms !== null) (served[t.name] ??= []).push(ms);
      if (drops > 0) dropped.push(`${t.name} had ${drops} SYNs dropped`);
    }
    if (times.galerad == null || times.haproxy == null) continue;
    ratios.push(times.galerad / times.haproxy);
    roundRatios.push(
      `${fmt(times.galerad / times.haproxy, 2)}${dropped.length ? ` (${dropped.join(", ")})` : ""}`,
    );
  }
  const storms =
    `Storms of ${OPTIONS.storm}, all served again (median of ${STORM_ROUNDS} rounds): ${
      targets.map((t) => `${t.name} ${served[t.name] ? fmt(median(served[t.name])) : "—"} ms`).join(
        ", ",
      )
    }; galerad's time as a multiple of HAProxy's in the same round: ${
      roundRatios.join(", ")
    } (median ${ratios.length ? fmt(median(ratios), 2) : "—"}×).`;
  console.log(storms);
  writeSection(
    "scale",
    `
## Sessions at scale

\`node_modules/.bin/bun scripts/bench/scale.ts --storm ${OPTIONS.storm}\` — ${
      new Date().toISOString().slice(0, 10)
    }; ${machine()}.

galerad (compiled binary, defaults but \`--interval 100ms --fall 1\`) and HAProxy 2.6 (\`inter 100
rise 1 fall 1\`, \`timeout check 1s\` as galerad's probe timeout, \`on-marked-down shutdown-sessions\`,
\`maxconn\` half the descriptor limit) in front of
the same two test backends (a greeting, then echo; in a process of their own), the same descriptor
limit (${LIMIT}) for all. Idle sessions: the proxy's RSS with N sessions open (each got its
greeting), ${
      SETTLE_MS / 1000
    } s after the last one opened (galerad collects the garbage of a burst of new
sessions once it has been quiet for 3 s); what that is per session above the proxy at rest, and
from the size before (what one more session costs, without what the first ones pay once); the
same for the private part of the RSS alone (RssAnon: heap, stacks, compiled code; the rest is
file pages, chiefly the binary's own code as first used, shared and clean); per session 2 s after
the last opened, before that collection; and the proxy's CPU over the ${
      IDLE_CPU_MS / 1000
    } s after the reading, with
nothing but its health checks (every 100 ms) to do.

| proxy | sessions | RSS MiB | KiB a session | each from the size before | private KiB a session | each from the size before | KiB a session at 2 s | CPU while idle, % of a core |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
${idle.join("\n")}

Failovers: first one of ${WARM_UP} sessions with its storm, not measured (a proxy in production
has run its code paths before; one started seconds ago would compile them during the first one:
what the runtime still compiles during the measured storm shows as JITWorker in its CPU split),
then N sessions on the active node, whose agent then answers unhealthy. The sever as the node
saw it (its connections closing: first to last, and from the health change, which includes up to
one probe interval, to the last), and, for galerad, from its own decision to the data plane's last
close (\`galerad_sever_seconds\`; its threads shut every node side down first and count the
sever done then, then close every descriptor). Then, for the storm, every client reconnects at once
(from a process of its own that connects through libc and epoll, scripts/bench/storm_client.ts,
so that the load generator costs less than the proxy it measures): the time until all are served again, the failures (refused, reset or closed before the greeting), and the
SYNs the kernel dropped at a full listen queue (TcpExt ListenDrops) meanwhile.

${targets.map((t) => `- ${t.name}: ${failovers[t.name].join(". ")}`).join("\n")}

${storms}
`,
  );
}

await runBench(main);
