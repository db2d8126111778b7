/**
 * What a proxy's memory does under the benchmarks' loads: its RSS, idle sessions held through
 * it, a client that reads slowly, a long run of point selects.
 */
import { connect } from "../lab/lab.ts";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import mysql from "mysql2/promise";
import { fmt, median } from "./report.ts";
import { sysbenchTarget } from "./sysbench.ts";

/** A proxy to measure: its client port and, when it is a process of its own, its pid. */
export interface Target {
  name: string;
  port: number;
  pid?: () => number | undefined;
}

/**
 * The resident set of process `pid` in MiB, or with "RssAnon" its private part (heap, stacks,
 * compiled code; the rest is file pages, chiefly the binary's own code as first used: shared,
 * clean, paid once however many sessions follow); NaN when it cannot be read.
 */
export function rssMiB(pid: number | undefined, part: "VmRSS" | "RssAnon" = "VmRSS"): number {
  if (!pid) return Number.NaN;
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = Number(new RegExp(`^${part}:\\s+(\\d+)`, "m").exec(status)?.[1]);
    return kb / 1024;
  } catch {
    return Number.NaN;
  }
}

/** Opens `count` idle client sessions (full MySQL handshakes) and returns a closer. */
export async function idleSessions(port: number, count: number) {
  const conns: mysql.Connection[] = [];
  for (let i = 0; i < count; i += 50) {
    const batch = await Promise.all(
      Array.from(
        { length: Math.min(50, count - i) },
        () => connect(port, { connectTimeout: 10_000, database: undefined }),
      ),
    );
    conns.push(...batch);
  }
  return () => {
    for (const c of conns) c.destroy();
  };
}

/** How long the 1,000 idle sessions are held before RSS is read. */
export const IDLE_SETTLE_MS = 5000;

/** RSS of each proxy before and with 1,000 idle sessions open through it. */
export async function idleRss(targets: Target[], label: string) {
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

export function idleText(idle: Record<string, { before: number; after: number }>): string {
  return Object.entries(idle).map(([n, v]) => `${n} ${fmt(v.before, 1)} → ${fmt(v.after, 1)} MiB`)
    .join("; ");
}

/** A client that reads a big result very slowly; returns the proxy's RSS growth meanwhile. */
export async function slowReader(port: number, pid: number | undefined): Promise<number> {
  const before = rssMiB(pid);
  let peak = before;
  const c = await connect(port);
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

/** RSS of the proxy sampled every 10 s while sysbench point selects run through it for `seconds`. */
export async function soak(
  port: number,
  pid: number | undefined,
  seconds: number,
): Promise<number[]> {
  const samples: number[] = [];
  const run = spawn("sysbench", [
    "oltp_point_select",
    ...sysbenchTarget(port),
    "--threads=16",
    `--time=${seconds}`,
    "run",
  ], { stdio: "ignore" });
  const sampler = setInterval(() => samples.push(rssMiB(pid)), 10_000);
  await new Promise((r) => run.on("close", r));
  clearInterval(sampler);
  return samples;
}

export function soakLine(samples: number[], seconds: number): string {
  return samples.length > 2
    ? `Memory soak: ${seconds} s of point selects (16 threads) through the Bun binary, RSS sampled every 10 s: first ${
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
