/**
 * sysbench for the benches: its options for the lab database, and one run read back as
 * queries per second, 95th percentile latency and the CPU spent per query.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** Where sysbench connects and how it is started (inside a network namespace, say). */
export interface SysbenchVia {
  host?: string;
  /** Prepended to the sysbench command, e.g. `ip netns exec NAME`. */
  prefix?: string[];
}

/** sysbench's connection and table options for the lab database through `port`. */
export function sysbenchTarget(port: number, host = "127.0.0.1"): string[] {
  return [
    "--db-driver=mysql",
    `--mysql-host=${host}`,
    `--mysql-port=${port}`,
    "--mysql-user=lab",
    "--mysql-password=lab",
    "--mysql-db=lab",
    "--tables=4",
    "--table-size=10000",
  ];
}

export const CLOCK_TICKS = Number(
  execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim(),
);

/**
 * The name and the user and system CPU seconds in a `/proc/PID/stat` or `/proc/PID/task/TID/stat`
 * file; null when it cannot be read (the process or thread is gone).
 */
export function statTimes(file: string): { name: string; user: number; system: number } | null {
  try {
    const text = readFileSync(file, "utf8");
    // The name is in brackets and may hold spaces; utime and stime follow as fields 14 and 15.
    const close = text.lastIndexOf(")");
    const fields = text.slice(close + 2).split(" ");
    return {
      name: text.slice(text.indexOf("(") + 1, close),
      user: Number(fields[11]) / CLOCK_TICKS,
      system: Number(fields[12]) / CLOCK_TICKS,
    };
  } catch {
    return null;
  }
}

/** CPU seconds (user + system, all threads) a process has used so far; NaN without one. */
export function cpuSeconds(pid: number | undefined): number {
  const times = pid ? statTimes(`/proc/${pid}/stat`) : null;
  return times ? times.user + times.system : Number.NaN;
}

/**
 * CPU seconds the whole machine has been busy so far, all cores: user, nice, system, irq and
 * softirq. The one measure that sees packets the kernel forwards on nobody's behalf.
 */
export function machineCpuSeconds(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0].split(/\s+/).slice(1);
  const [user, nice, system, , , irq, softirq] = fields.map(Number);
  return (user + nice + system + irq + softirq) / CLOCK_TICKS;
}

/**
 * One sysbench run through `port`; `pid` is the proxy whose CPU per query is read (`cpuUs`);
 * `machineUs` is the whole machine's busy CPU per query.
 */
export function sysbench(
  port: number,
  test: string,
  threads: number,
  seconds: number,
  pid?: number,
  via: SysbenchVia = {},
) {
  const cpuBefore = cpuSeconds(pid);
  const machineBefore = machineCpuSeconds();
  const [command, ...prefixArgs] = [...(via.prefix ?? []), "sysbench"];
  const out = execFileSync(command, [
    ...prefixArgs,
    test,
    ...sysbenchTarget(port, via.host),
    `--threads=${threads}`,
    `--time=${seconds}`,
    "--percentile=95",
    "--report-interval=0",
    "--mysql-ignore-errors=1213,1205",
    "run",
  ], { encoding: "utf8", maxBuffer: 16 << 20 });
  const cpu = cpuSeconds(pid) - cpuBefore;
  const machine = machineCpuSeconds() - machineBefore;
  const queries = Number(/queries:\s+(\d+)/.exec(out)?.[1]);
  const qps = Number(/queries:\s+\d+\s+\(([\d.]+) per sec/.exec(out)?.[1]);
  const p95 = Number(/95th percentile:\s+([\d.]+)/.exec(out)?.[1]);
  return { qps, p95, cpuUs: (cpu * 1e6) / queries, machineUs: (machine * 1e6) / queries };
}
