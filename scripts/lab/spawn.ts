import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import process from "node:process";
import { waitFor } from "./fixtures.ts";

export const ROOT = path.resolve(import.meta.dir, "../..");
export const ENTRY = path.join(ROOT, "mod.ts");

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("GALERAD_")) env[k] = v;
  }
  return { ...env, ...extra };
}

/** Runs `galerad ARGS` from source under Bun (or `command` instead) and collects its output. */
export function runCli(
  args: string[],
  options: { env?: Record<string, string>; command?: string[]; cwd?: string; timeoutMs?: number } =
    {},
): Promise<Result> {
  const command = options.command ?? [process.execPath, "run", ENTRY];
  return new Promise((resolve) => {
    const child = spawn(command[0], [...command.slice(1), ...args], {
      env: options.env && "PATH" in options.env && options.env.PATH === ""
        ? options.env
        : cleanEnv(options.env ?? {}),
      cwd: options.cwd,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (c) => (stdout += c));
    child.stderr!.on("data", (c) => (stderr += c));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 20_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running galerad process whose JSON log lines the test can wait for. */
export interface Daemon {
  child: ChildProcess;
  readonly stderr: string;
  logs(): Record<string, unknown>[];
  waitForLog(
    what: string,
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `galerad ARGS` with JSON logs and keeps it running until `stop`. */
export function startDaemon(
  args: string[],
  options: { env?: Record<string, string>; command?: string[]; cwd?: string } = {},
): Daemon {
  const command = options.command ?? [process.execPath, "run", ENTRY];
  const child = spawn(command[0], [...command.slice(1), ...args, "--log-format", "json"], {
    // Tests stop proxies often: no load balancer waits on them unless a test says so.
    env: cleanEnv({ GALERAD_SHUTDOWN_DELAY: "0s", ...options.env }),
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (c) => (stderr += c));
  child.stdout!.on("data", () => {});
  const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
  const logs = () =>
    stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
  return {
    child,
    get stderr() {
      return stderr;
    },
    logs,
    exited,
    waitForLog: (what, match, timeoutMs = 15_000) =>
      waitFor(
        `log line: ${what} (stderr so far: ${stderr.slice(-2000)})`,
        () => logs().find(match),
        timeoutMs,
      ),
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** The `properties` of a logtape JSON line. */
export function props(line: Record<string, unknown>): Record<string, unknown> {
  return (line.properties ?? {}) as Record<string, unknown>;
}

/** Flags that bind a proxy's client, API and health ports to free loopback ports. */
export const LOOPBACK_PORTS = [
  "--listen",
  "127.0.0.1:0",
  "--api-listen",
  "127.0.0.1:0",
  "--health-listen",
  "127.0.0.1:0",
];

/** The client port a started proxy says it listens on (its "listening" log line). */
export async function clientPort(d: Daemon): Promise<number> {
  const line = await d.waitForLog(
    "listening for clients",
    (l) => String(l.message).startsWith("listening for clients"),
  );
  return Number(props(line).port);
}
