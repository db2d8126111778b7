/**
 * Gives back what starting up left in memory, once, a moment after the listener is up; and
 * collects the garbage a burst of new sessions leaves, once the burst is over.
 *
 * Under Bun, loading the modules, parsing the configuration and starting the threads leave
 * memory a collection alone does not return: compiled code run once, and allocator pages.
 * `Bun.shrink()` (JavaScriptCore's "shrink footprint": drop compiled code, collect, return free
 * allocator pages) gives it back, in each thread that calls it: measured, a fresh proxy
 * 51.4–52.2 → 50.2–50.5 MiB, and with 1,000 idle sessions 59.6–60.2 → 58.1–58.2. Sessions that
 * came sooner recompile their path once. Run after every quiet spell (tried), it took 1,000
 * idle sessions 4 MiB lower, but cost 0.3–2 µs of CPU per query in the next 8 s of traffic,
 * from recompiling the data path and from the collection itself (docs/BENCHMARKS.md).
 * After a burst of new sessions (handshakes, the messages that announced them between threads)
 * a full collection alone, 3 s after the last one, with compiled code kept: 1,000 idle sessions
 * 58.0 → 56.8 MiB, measured; a few milliseconds per thread, once per burst, never per packet.
 * Elsewhere (Deno: V8 manages its own heap) both do nothing.
 */

/** How long after the listener is up the start-up memory is given back. */
export const RELEASE_AFTER_START_MS = 3000;
/** How long without a new session before the garbage of the last burst is collected. */
export const COLLECT_AFTER_QUIET_MS = 3000;

interface BunMemory {
  gc(force: boolean): void;
  shrink?(): void;
}

const bun = (globalThis as { Bun?: BunMemory }).Bun;

/** Collects and trims the current thread's heap, where the runtime offers that (Bun). */
export function releaseMemory(): void {
  if (!bun?.shrink) return;
  bun.gc(true);
  bun.shrink();
}

/** A full collection of the current thread's heap, compiled code kept (Bun). */
export function collectGarbage(): void {
  bun?.gc(true);
}

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
    if (!bun && this.collect === collectGarbage) return;
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
  if (!bun?.shrink && release === releaseMemory) return;
  const timer = setTimeout(release, delayMs);
  (timer as { unref?: () => void }).unref?.();
}
