/**
 * Gives back what starting up left in memory, once, a moment after the listener is up; and
 * collects the garbage a burst of new sessions leaves, once the burst is over.
 *
 * Under Bun, loading the modules, parsing the configuration and starting the threads leave
 * memory a collection alone does not return: compiled code run once, and allocator pages;
 * `releaseMemory` (#thread) gives it back in the thread that calls it. Run after every quiet
 * spell instead, it cost CPU per query in the traffic that followed, from recompiling the data
 * path (docs/BENCHMARKS.md). After a burst of new sessions a full collection alone, compiled
 * code kept, once per burst, never per packet. Where the runtime has no such hook both do
 * nothing.
 */
import { canReleaseMemory, collectGarbage, releaseMemory } from "#thread";

/** How long after the listener is up the start-up memory is given back. */
export const RELEASE_AFTER_START_MS = 3000;
/** How long without a new session before the garbage of the last burst is collected. */
export const COLLECT_AFTER_QUIET_MS = 3000;

/**
 * Main thread: `note()` each new session; `collect` runs once `quietMs` have passed without one
 * (one timer per burst, however many sessions it brings).
 */
export class QuietCollector {
  #last = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly collect: () => void = collectGarbage,
    readonly quietMs = COLLECT_AFTER_QUIET_MS,
  ) {}

  note(): void {
    if (!canReleaseMemory && this.collect === collectGarbage) return;
    this.#last = performance.now();
    if (this.#timer === null) this.#arm(this.quietMs);
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = null;
      const quiet = performance.now() - this.#last;
      if (quiet < this.quietMs) this.#arm(this.quietMs - quiet);
      else this.collect();
    }, ms);
    (this.#timer as { unref?: () => void }).unref?.();
  }
}

/** Main thread: releases start-up memory once, `delayMs` from now. */
export function releaseAfterStart(
  release: () => void = releaseMemory,
  delayMs = RELEASE_AFTER_START_MS,
): void {
  if (!canReleaseMemory && release === releaseMemory) return;
  const timer = setTimeout(release, delayMs);
  (timer as { unref?: () => void }).unref?.();
}
