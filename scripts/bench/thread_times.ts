/**
 * CPU time per thread of a process, from /proc/PID/task/TID/stat, summed by thread name: what
 * part of a proxy's CPU its data-plane threads, its main thread and its runtime's compiler and
 * collector took (HAProxy runs one name).
 */
import { readdirSync } from "node:fs";
import { statTimes } from "./sysbench.ts";

/** CPU seconds (user, system) per thread id, with the thread's name. */
export type ThreadTimes = Map<string, { name: string; user: number; system: number }>;

/** Reads every thread of `pid` now; a thread that ends meanwhile is left out. */
export function threadTimes(pid: number | undefined): ThreadTimes {
  const out: ThreadTimes = new Map();
  if (!pid) return out;
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const times = statTimes(`/proc/${pid}/task/${tid}/stat`);
    if (times) out.set(tid, times);
  }
  return out;
}

/** "Worker 380 ms (60 user), galerad 70 ms (50 user), …": CPU between two readings by name. */
export function threadSplit(before: ThreadTimes, after: ThreadTimes): string {
  const sums = new Map<string, { user: number; system: number }>();
  for (const [tid, now] of after) {
    const was = before.get(tid) ?? { user: 0, system: 0 };
    const sum = sums.get(now.name) ?? { user: 0, system: 0 };
    sum.user += now.user - was.user;
    sum.system += now.system - was.system;
    sums.set(now.name, sum);
  }
  const ms = (seconds: number) => Math.round(seconds * 1000);
  return [...sums]
    .map(([name, t]) => ({ name, ms: ms(t.user + t.system), user: ms(t.user) }))
    .filter((t) => t.ms > 0)
    .sort((a, b) => b.ms - a.ms)
    .map((t) => `${t.name} ${t.ms} ms (${t.user} user)`)
    .join(", ");
}
