import { Ring } from "../core/ring.ts";
import type { Proxy } from "./proxy.ts";

/** One second of the proxy, for the dashboard's charts. */
export interface HistorySample {
  /** Wall clock, ms (the charts' time axis). */
  t: number;
  sessions: number;
  readerSessions: number;
  /** New sessions accepted in this second (writer and reader ports). */
  accepted: number;
  bytesUp: number;
  bytesDown: number;
  /** Clients refused in this second, by reason. */
  refused: Record<string, number>;
  /** Each backend's last probe latency (ms), or null when unknown. */
  probeMs: Record<string, number | null>;
}

/** 15 minutes at one sample a second. */
export const HISTORY_SECONDS = 900;

/**
 * Samples the proxy's counters once a second into a fixed-size ring (per-second deltas and
 * current gauges); memory is bounded whatever the uptime.
 */
export class History {
  readonly ring = new Ring<HistorySample>(HISTORY_SECONDS);
  #timer: ReturnType<typeof setInterval> | undefined;
  #last: { accepted: number; up: number; down: number; refused: Record<string, number> } | null =
    null;

  constructor(readonly proxy: Proxy) {}

  start(): void {
    this.sample();
    this.#timer = setInterval(() => this.sample(), 1000);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Takes one sample now (the timer's tick; tests call it directly). */
  sample(now = Date.now()): void {
    const p = this.proxy;
    const c = p.counters;
    const reader = p.reader?.counters;
    const bytes = p.bytes;
    const refusedNow: Record<string, number> = { ...c.refused };
    for (const [k, v] of Object.entries(reader?.refused ?? {})) {
      refusedNow[k] = (refusedNow[k] ?? 0) + v;
    }
    const totals = {
      accepted: p.accepted + (reader?.accepted ?? 0),
      up: bytes.up + (reader?.bytesUp ?? 0),
      down: bytes.down + (reader?.bytesDown ?? 0),
      refused: refusedNow,
    };
    const last = this.#last ?? totals;
    const refused: Record<string, number> = {};
    for (const [k, v] of Object.entries(totals.refused)) {
      const d = v - (last.refused[k] ?? 0);
      if (d > 0) refused[k] = d;
    }
    const probeMs: Record<string, number | null> = {};
    for (const b of p.backends.values()) {
      probeMs[b.spec.name] = b.health.lastProbe ? b.health.lastProbe.latencyMs : null;
    }
    this.ring.push({
      t: now,
      sessions: p.sessionCount,
      readerSessions: p.reader?.sessionCount ?? 0,
      accepted: Math.max(0, totals.accepted - last.accepted),
      bytesUp: Math.max(0, totals.up - last.up),
      bytesDown: Math.max(0, totals.down - last.down),
      refused,
      probeMs,
    });
    this.#last = totals;
  }
}
