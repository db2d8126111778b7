import type { ProbeResult } from "../core/health_state.ts";
import { probeAgent, type ProbeMode } from "./probe.ts";

/** Timing of the health checks, the same for every backend. */
export interface MonitorOptions {
  intervalMs: number;
  timeoutMs: number;
}

/** Probes one agent; replaceable in tests. */
export type Prober = (url: string, mode: ProbeMode, timeoutMs: number) => Promise<ProbeResult>;

/**
 * Probes every backend's agent on its own loop: a probe starts every `intervalMs` (or as soon
 * as the previous one ends, if it took longer), and each is bounded by `timeoutMs`, so one hung
 * agent never delays the others or the decision that depends on them.
 */
export class HealthMonitor {
  #loops = new Map<string, { timer?: ReturnType<typeof setTimeout>; stopped: boolean }>();

  constructor(
    readonly options: MonitorOptions,
    readonly onResult: (name: string, result: ProbeResult) => void,
    readonly prober: Prober = probeAgent,
  ) {}

  /** Starts probing a backend at once; a backend already watched is restarted. */
  watch(name: string, url: string): void {
    this.unwatch(name);
    const loop: { timer?: ReturnType<typeof setTimeout>; stopped: boolean } = { stopped: false };
    const mode: ProbeMode = { statusApi: true };
    this.#loops.set(name, loop);
    const tick = async () => {
      const started = performance.now();
      const result = await this.prober(url, mode, this.options.timeoutMs);
      if (loop.stopped) return;
      this.onResult(name, result);
      const wait = Math.max(0, this.options.intervalMs - (performance.now() - started));
      loop.timer = setTimeout(tick, wait);
    };
    tick();
  }

  /** Stops probing a backend; a probe in flight is ignored when it ends. */
  unwatch(name: string): void {
    const loop = this.#loops.get(name);
    if (!loop) return;
    loop.stopped = true;
    clearTimeout(loop.timer);
    this.#loops.delete(name);
  }

  stop(): void {
    for (const name of [...this.#loops.keys()]) this.unwatch(name);
  }
}
