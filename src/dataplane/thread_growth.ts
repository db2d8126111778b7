/**
 * `--threads auto`: every window, reads how long each epoll thread ran and waited for a CPU
 * (/proc/self/task/<tid>/schedstat) and adds one thread while they are in demand. The rule is
 * pure (core/threads.ts); this is its clock and its file reads.
 */
import { getLogger } from "@logtape/logtape";
import { readFileSync } from "node:fs";
import {
  demand,
  DEMAND_WINDOW_MS,
  meanDemand,
  parseSchedstat,
  shouldGrow,
  type ThreadTimes,
} from "../core/threads.ts";
import type { ThreadGrowth } from "./plane.ts";
import type { Thread } from "./thread.ts";

const log = getLogger(["galerad", "proxy"]);

/** What growth needs of the plane: its threads now, and a way to start one more. */
export interface GrowingPlane {
  readonly threads: number;
  running(): Iterable<Thread>;
  /** Starts one more thread; resolves once it listens. */
  grow(): Promise<void>;
}

export class ThreadGrowthWatch {
  #timer: ReturnType<typeof setInterval> | null = null;
  #growing = false;

  constructor(readonly plane: GrowingPlane, readonly growth: ThreadGrowth) {
    const windowMs = growth.windowMs ?? DEMAND_WINDOW_MS;
    this.#timer = setInterval(() => this.#check(windowMs), windowMs);
    // Never what keeps the process alive.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  #check(windowMs: number): void {
    const { plane, growth } = this;
    if (plane.threads >= growth.max) return this.stop();
    if (this.#growing) return;
    const at = performance.now();
    const demands: number[] = [];
    let complete = true;
    for (const thread of plane.running()) {
      const times = thread.tid > 0 ? readThreadTimes(thread.tid) : null;
      if (!times) {
        log.warn(
          "--threads auto: cannot read the data-plane threads' load (/proc/self/task/*/schedstat); " +
            "staying at {threads} threads",
          { threads: plane.threads },
        );
        return this.stop();
      }
      if (thread.times) demands.push(demand(thread.times, times, (at - thread.timesAt) * 1e6));
      else complete = false; // started since the last reading: its first window starts now
      thread.times = times;
      thread.timesAt = at;
    }
    if (!complete || !shouldGrow(demands, plane.threads, growth.max)) return;
    this.#growing = true;
    const from = plane.threads;
    plane.grow().then(
      () =>
        log.info(
          "--threads auto: {from} → {to} data-plane threads (they wanted a CPU {demand}% of " +
            "the last {window} s)",
          {
            from,
            to: plane.threads,
            demand: Math.round(meanDemand(demands) * 100),
            window: windowMs / 1000,
          },
        ),
      (error) => {
        log.error("--threads auto: cannot start another data-plane thread: {reason}", {
          reason: String(error),
        });
        this.stop();
      },
    ).finally(() => (this.#growing = false));
  }
}

/** A thread's schedstat (time on a CPU and waiting for one); null where Linux does not give it. */
function readThreadTimes(tid: number): ThreadTimes | null {
  try {
    return parseSchedstat(readFileSync(`/proc/self/task/${tid}/schedstat`, "utf8"));
  } catch {
    return null;
  }
}
