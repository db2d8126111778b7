/**
 * Benchmark reporting: statistics, and one section of docs/BENCHMARKS.md replaced in place (each
 * benchmark owns the text between its BEGIN/END markers, so running one leaves the others).
 */
import process from "node:process";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export const ROOT = path.resolve(import.meta.dir, "../..");
const FILE = path.join(ROOT, "docs/BENCHMARKS.md");

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function summary(values: number[]) {
  return {
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
    n: values.length,
  };
}

export const fmt = (n: number, digits = 0) => n.toFixed(digits);

/**
 * A benchmark's options: `--name N` (a whole number, at least `min`) or `--flag`, each known by
 * the script; anything else stops it with a one-line error before a lab is started.
 */
export function benchOptions<N extends string, F extends string = never>(
  usage: string,
  numbers: Record<N, { fallback: number; min: number }>,
  flags: readonly F[] = [],
): Record<N, number> & Record<F, boolean> {
  const out: Record<string, number | boolean> = {};
  for (const [name, spec] of Object.entries(numbers) as [string, { fallback: number }][]) {
    out[name] = spec.fallback;
  }
  for (const flag of flags) out[flag] = false;
  const fail = (message: string): never => {
    console.error(`${message} (usage: ${usage})`);
    process.exit(2);
  };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, "");
    if (!argv[i].startsWith("--") || !(name in out)) fail(`unknown argument '${argv[i]}'`);
    if (typeof out[name] === "boolean") {
      out[name] = true;
      continue;
    }
    const text = argv[++i];
    const value = Number(text);
    const { min } = (numbers as Record<string, { min: number }>)[name];
    if (text === undefined || !/^\d+$/.test(text) || value < min) {
      fail(`--${name}: expected a whole number of at least ${min}, got ${text ?? "nothing"}`);
    }
    out[name] = value;
  }
  return out as Record<N, number> & Record<F, boolean>;
}

/** The machine and versions, for the head of every section. */
export function machine(): string {
  const version = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: "utf8" }).split("\n")[0].trim();
    } catch {
      return "not installed";
    }
  };
  return [
    `${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${
      Math.round(os.totalmem() / 2 ** 30)
    } GiB, ${os.type()} ${os.release()}`,
    `Bun ${version(path.join(ROOT, "node_modules/.bin/bun"), ["--version"])}`,
    `${version("mariadbd", ["--version"])}`,
    `${version("haproxy", ["-v"])}`,
  ].join("; ");
}

/** Replaces (or appends) the section `name` of docs/BENCHMARKS.md. */
export function writeSection(name: string, markdown: string): void {
  const begin = `<!-- BEGIN ${name} -->`;
  const end = `<!-- END ${name} -->`;
  let text = existsSync(FILE)
    ? readFileSync(FILE, "utf8")
    : "# Benchmarks\n\nEach section is written by the script it names; rerun it to refresh the figures.\n";
  const block = `${begin}\n${markdown.trim()}\n${end}`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  text = i >= 0 && j > i
    ? text.slice(0, i) + block + text.slice(j + end.length)
    : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(FILE, text);
}

/**
 * The targets in the order a round runs them: as listed in even rounds; in odd ones all but the
 * last reversed, the last (the baseline, e.g. direct) still last: A B C D E, D C B A E, ... The
 * machine's drift (measured here: the same target 13k → 20k qps over eight minutes) then favours
 * no target for running first or later in a round, and no target runs twice in a row across a
 * round's end, where one slow spell would catch it twice (seen with plain reversal: A B C, C B A).
 */
export function roundOrder<T>(targets: readonly T[], round: number): T[] {
  if (round % 2 === 0 || targets.length < 2) return [...targets];
  return [...targets.slice(0, -1).reverse(), targets[targets.length - 1]];
}

/** What a bench started and must stop however it ends (see `runBench`). */
export interface Cleanup {
  /** Adds a step; steps run once, the last added first. */
  add(step: () => unknown): void;
}

/**
 * Runs a bench's `main` so that what it started (the lab's MariaDB servers, agents, proxies,
 * HAProxy) is stopped however the run ends: at the end, on an error (printed as one line, exit
 * 1) and on Ctrl-C or SIGTERM (exit 130 / 143). An interrupted bench used to leave all of it
 * running, holding the ports and the lab directory the next run needs.
 */
export async function runBench(main: (cleanup: Cleanup) => Promise<void>): Promise<never> {
  const steps: (() => unknown)[] = [];
  let running: Promise<void> | null = null;
  const cleanUp = () =>
    running ??= (async () => {
      for (const step of steps.splice(0).reverse()) {
        try {
          await step();
        } catch (error) {
          console.error(`clean-up: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    })();
  const codes = { SIGINT: 130, SIGTERM: 143 } as const;
  let exitCode = 0;
  const interrupted = (signal: keyof typeof codes) => {
    if (exitCode === 0) console.error(`${signal}: stopping what the bench started`);
    exitCode = codes[signal];
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      interrupted(signal);
      cleanUp().finally(() => process.exit(exitCode));
    });
  }
  try {
    await main({ add: (step) => steps.push(step) });
  } catch (error) {
    // Ctrl-C reaches sysbench too: its death arrives here, before our own handler has run.
    const signal = (error as { signal?: string } | null)?.signal;
    if (signal === "SIGINT" || signal === "SIGTERM") interrupted(signal);
    else if (exitCode === 0) {
      console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`);
      exitCode = 1;
    }
  }
  await cleanUp();
  process.exit(exitCode);
}
