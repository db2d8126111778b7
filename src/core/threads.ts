/**
 * How many data-plane threads `--threads auto` runs. Each epoll thread is a JavaScript VM of its
 * own, whose heap counts in the proxy's memory, so one per CPU from the start would make a
 * proxy on a many-CPU host hold far more memory than its sessions need (docs/BENCHMARKS.md).
 * Instead `auto` starts with two (one on a single CPU: two runnable threads are what a busy
 * two-CPU host needs, docs/BENCHMARKS.md) and adds one at a time, up to one per CPU, while the
 * threads it has are in demand. Threads are never taken away: their sessions live there.
 *
 * Demand is a thread's time running or waiting to run (Linux's schedstat) over a window of wall
 * time: 1.0 means the thread wanted a CPU all the time. Waiting counts because on a host where
 * the database and its clients compete for the CPUs, a thread that waits in the run queue
 * stalls every session it carries; another thread is another place in that queue, as HAProxy's
 * `nbthread` is.
 */

/** The most threads `auto` goes to, whatever the CPU count (as `--threads auto` always had). */
export const AUTO_MAX_THREADS = 16;
/** Threads `auto` starts with. */
export const AUTO_START_THREADS = 2;
/** Mean demand over a window at or above which `auto` adds a thread. */
export const GROW_AT_DEMAND = 0.5;
/** How often the threads' demand is read: the window it is measured over. */
export const DEMAND_WINDOW_MS = 3000;

/** The threads a proxy starts with and may grow to: `requested` 0 is `auto`. */
export function threadPlan(
  requested: number,
  cpus: number,
): { threads: number; maxThreads: number } {
  if (requested > 0) return { threads: requested, maxThreads: requested };
  const maxThreads = Math.max(1, Math.min(AUTO_MAX_THREADS, cpus));
  return { threads: Math.min(AUTO_START_THREADS, maxThreads), maxThreads };
}

/** One reading of a thread's schedstat: nanoseconds on a CPU and waiting for one, so far. */
export interface ThreadTimes {
  runNs: number;
  waitNs: number;
}

/** `/proc/.../schedstat`'s text ("run wait timeslices"); null when it is not that. */
export function parseSchedstat(text: string): ThreadTimes | null {
  const fields = text.trim().split(/\s+/);
  if (fields.length < 2) return null;
  const runNs = Number(fields[0]);
  const waitNs = Number(fields[1]);
  if (!Number.isFinite(runNs) || !Number.isFinite(waitNs) || runNs < 0 || waitNs < 0) return null;
  return { runNs, waitNs };
}

/** A thread's demand between two readings `wallNs` apart (0 for an empty or reversed window). */
export function demand(before: ThreadTimes, after: ThreadTimes, wallNs: number): number {
  if (!(wallNs > 0)) return 0;
  const used = after.runNs - before.runNs + after.waitNs - before.waitNs;
  return Math.max(0, used / wallNs);
}

/** The threads' mean demand (0 for none). */
export function meanDemand(demands: readonly number[]): number {
  return demands.length === 0 ? 0 : demands.reduce((sum, d) => sum + d, 0) / demands.length;
}

/** Whether `auto` adds a thread, given each current thread's demand over the last window. */
export function shouldGrow(demands: readonly number[], threads: number, max: number): boolean {
  return threads < max && demands.length > 0 && meanDemand(demands) >= GROW_AT_DEMAND;
}
