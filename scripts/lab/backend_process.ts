/**
 * Test backends (a greeting, then echo) in a process of their own, for benchmarks that open
 * thousands of client sockets: in the same process the clients' event loop and the backends'
 * accepts share one thread, and the backends' accept queue, not the proxy, sets the pace.
 *
 * As a program: `bun scripts/lab/backend_process.ts NAME...` starts one backend per name,
 * prints their `{name, port}` as one JSON line, and answers each line `closes` on its stdin with
 * the connections closed since the last one (count, first and last as epoch milliseconds). It
 * runs until its stdin closes.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import process from "node:process";
import { startBackend } from "./fixtures.ts";

/** Connections a backend process saw close; times in epoch milliseconds, comparable across processes. */
export interface Closes {
  count: number;
  first: number;
  last: number;
}

export interface BackendProcess {
  backends: { name: string; port: number }[];
  pid: number;
  /**
   * The connections closed (on any of its backends) since the previous call, once at least
   * `atLeast` have (or 10 s passed): the process reads its sockets' closes and its commands in
   * one event loop, so without a count the answer could come before closes still queued.
   */
  closes(atLeast?: number): Promise<Closes>;
  close(): Promise<void>;
}

/** Epoch milliseconds with the monotonic clock's resolution. */
export const now = () => performance.timeOrigin + performance.now();

/** Starts the backends named in a child process; resolves once each one listens. */
export function startBackendProcess(names: string[]): Promise<BackendProcess> {
  const child = spawn(process.execPath, [import.meta.path, ...names], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const lines = createInterface({ input: child.stdout! });
  const next = () => new Promise<string>((r) => lines.once("line", r));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`backend process exited (${code})`)));
    next().then((line) =>
      resolve({
        backends: JSON.parse(line),
        pid: child.pid!,
        closes: (atLeast = 0) => {
          const answer = next();
          child.stdin!.write(`closes ${atLeast}\n`);
          return answer.then((l) => JSON.parse(l));
        },
        close: () => (child.stdin!.end(), exited),
      })
    );
  });
}

if (import.meta.main) {
  let closes: Closes = { count: 0, first: 0, last: 0 };
  /** A `closes N` still waiting for its count. */
  let asked: { atLeast: number; timer: ReturnType<typeof setTimeout> } | null = null;
  const answer = () => {
    if (asked) clearTimeout(asked.timer);
    asked = null;
    console.log(JSON.stringify(closes));
    closes = { count: 0, first: 0, last: 0 };
  };
  const closed = () => {
    const t = now();
    if (closes.count++ === 0) closes.first = t;
    closes.last = t;
    if (asked && closes.count >= asked.atLeast) answer();
  };
  const started = await Promise.all(process.argv.slice(2).map((n) => startBackend(n, closed)));
  console.log(JSON.stringify(started.map((b) => ({ name: b.name, port: b.port }))));
  const commands = createInterface({ input: process.stdin });
  commands.on("line", (line) => {
    const atLeast = Number(line.split(" ")[1] ?? 0) || 0;
    if (closes.count >= atLeast) return answer();
    asked = { atLeast, timer: setTimeout(answer, 10_000) };
  });
  commands.on("close", () => process.exit(0));
}
