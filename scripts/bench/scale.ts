/**
 * Sessions at scale, galerad (compiled binary) and HAProxy side by side in one run, both in front
 * of the same two test backends (a greeting and an echo) with the same descriptor limit: RSS with
 * 1,000 / 5,000 / 10,000 idle sessions; then, with STORM sessions on the active node, a failover
 * (its agent turns unhealthy): how long from the first severed client to the last (the sever
 * itself), and, when every client reconnects at once, how long until all are served again and
 * how many failed.
 *
 *   node_modules/.bin/bun scripts/bench/scale.ts [--storm 5000]
 *
 * Re-runs itself with its hard descriptor limit; the largest size is what that limit allows (two
 * descriptors per session in the proxy, two in this process). Writes the "scale" section of
 * docs/BENCHMARKS.md.
 */
import { execFileSync, spawnSync } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { startAgent, startBackend } from "../lab/fixtures.ts";
import { startDaemon } from "../lab/spawn.ts";
import {
  benchOptions,
  type Cleanup,
  fmt,
  machine,
  ROOT,
  runBench,
  writeSection,
} from "./report.ts";
import { rssMiB } from "./memory.ts";
import { haproxyConfig, startHaproxy } from "./topology.ts";

if (process.env.GALERAD_SCALE_LIMIT !== "1") {
  const r = spawnSync("bash", [
    "-c",
    `ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"`,
    process.execPath,
    ...process.argv.slice(1),
  ], {
    stdio: "inherit",
    env: { ...process.env, GALERAD_SCALE_LIMIT: "1" },
  });
  process.exit(r.status ?? 1);
}

const OPTIONS = benchOptions("scale.ts [--storm 5000]", { storm: { fallback: 5000, min: 100 } });
const BIN = path.join(ROOT, "galerad");
/** Each session holds two descriptors in the proxy and two here (client, backend). */
const LIMIT = Number(execFileSync("bash", ["-c", "ulimit -n"], { encoding: "utf8" }).trim());
const SIZES = [1000, 5000, Math.min(10_000, Math.floor((LIMIT - 1000) / 2))];
const GALERAD = 24610;
const HAPROXY = 24611;

/** Opens `n` clients (in batches), each waiting for its greeting; resolves with the sockets. */
async function open(port: number, n: number): Promise<net.Socket[]> {
  const out: net.Socket[] = [];
  for (let i = 0; i < n; i += 200) {
    const batch = await Promise.all(
      Array.from(
        { length: Math.min(200, n - i) },
        () =>
          new Promise<net.Socket>((resolve, reject) => {
            const s = net.connect({ host: "127.0.0.1", port });
            s.once("data", () => resolve(s));
            s.once("error", reject);
          }),
      ),
    );
    out.push(...batch);
  }
  return out;
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

async function main(cleanup: Cleanup) {
  execFileSync("bash", [path.join(ROOT, "compile.sh")], { stdio: "inherit" });
  const db = [await startBackend("db0"), await startBackend("db1")];
  const agents = [
    await startAgent({ healthy: true, index: 0 }),
    await startAgent({ healthy: true, index: 1 }),
  ];
  cleanup.add(async () => {
    for (const x of [...db, ...agents]) await x.close();
  });
  const galerad = startDaemon([
    "proxy",
    "--listen",
    `127.0.0.1:${GALERAD}`,
    "--api-listen",
    "127.0.0.1:0",
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
      defaults: [`maxconn ${maxconn}`],
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
  await new Promise((r) => setTimeout(r, 3000));
  const targets = [
    { name: "galerad", port: GALERAD, pid: () => galerad.child.pid },
    { name: "haproxy", port: HAPROXY, pid: () => haproxy.pid },
  ];
  const idle: Record<string, string[]> = {};
  for (const t of targets) {
    const base = rssMiB(t.pid());
    idle[t.name] = [`${fmt(base, 1)} MiB at rest`];
    for (const n of SIZES) {
      const socks = await open(t.port, n);
      await new Promise((r) => setTimeout(r, 2000));
      const rss = rssMiB(t.pid());
      idle[t.name].push(
        `${n}: ${fmt(rss, 1)} MiB (${fmt(((rss - base) * 1024) / n, 1)} KiB/session)`,
      );
      for (const s of socks) s.destroy();
      await new Promise((r) => setTimeout(r, 2000));
    }
    console.log(t.name, idle[t.name].join("; "));
  }
  const storm: Record<string, string> = {};
  for (const t of targets) {
    agents[0].set({ healthy: true });
    agents[1].set({ healthy: true });
    await new Promise((r) => setTimeout(r, 1500));
    const socks = await open(t.port, OPTIONS.storm);
    const closedAt: number[] = [];
    const decided = performance.now();
    // Every wait is bounded: a step that hangs says what it was waiting for instead.
    await Promise.all([
      ...socks.map((s) =>
        bounded(
          new Promise<void>((r) => s.once("close", () => (closedAt.push(performance.now()), r()))),
        )
      ),
      Promise.resolve().then(() => agents[0].set({ healthy: false })),
    ]);
    const severSpread = Math.max(...closedAt) - Math.min(...closedAt);
    const neverClosed = OPTIONS.storm - closedAt.length;
    for (const s of socks) s.destroy();
    const t0 = performance.now();
    let failed = 0, wrongNode = 0, stuck = 0;
    const again = await Promise.all(
      Array.from({ length: OPTIONS.storm }, () =>
        bounded(
          new Promise<net.Socket | null>((resolve) => {
            const s = net.connect({ host: "127.0.0.1", port: t.port });
            s.once("data", (d) => (String(d).includes("hello db1") || wrongNode++, resolve(s)));
            s.once("error", () => (failed++, resolve(null)));
            s.once("close", () => resolve(null));
          }),
        ).then((s) => s === TIMED_OUT ? (stuck++, null) : s)),
    );
    const served = performance.now() - t0;
    for (const s of again) s?.destroy();
    storm[t.name] = `sever ${fmt(severSpread)} ms first to last close (${
      fmt(Math.max(...closedAt) - decided)
    } ms from the health change to the last close${
      neverClosed ? `, ${neverClosed} never closed within ${STEP_LIMIT_MS / 1000} s` : ""
    }); all ${OPTIONS.storm} served again in ${
      fmt(served)
    } ms, ${failed} failed, ${wrongNode} on the old node, ${stuck} unanswered within ${
      STEP_LIMIT_MS / 1000
    } s`;
    console.log(t.name, storm[t.name]);
    agents[0].set({ healthy: true });
    await new Promise((r) => setTimeout(r, 2000));
    // galerad does not fail back; HAProxy does (db0 is its primary): both have one node again.
  }
  writeSection(
    "scale",
    `
## Sessions at scale

\`node_modules/.bin/bun scripts/bench/scale.ts --storm ${OPTIONS.storm}\` — ${
      new Date().toISOString().slice(0, 10)
    }; ${machine()}.

galerad (compiled binary, defaults but \`--interval 100ms --fall 1\`) and HAProxy 2.6 (\`inter 100
rise 1 fall 1\`, \`on-marked-down shutdown-sessions\`, \`maxconn\` half the descriptor limit) in front of the same two
test backends (a greeting, then echo), the same descriptor limit (${LIMIT}) for all. Idle sessions: RSS of the
proxy with N sessions open (each got its greeting), 2 s after the last one opened.

${targets.map((t) => `- ${t.name}: ${idle[t.name].join("; ")}`).join("\n")}

Failover with ${OPTIONS.storm} sessions on the active node, then every client reconnecting at once:

${targets.map((t) => `- ${t.name}: ${storm[t.name]}`).join("\n")}
`,
  );
}

await runBench(main);
