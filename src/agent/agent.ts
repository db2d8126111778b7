import { getLogger } from "@logtape/logtape";
import { existsSync, readFileSync } from "node:fs";
import { sstDonorRunning } from "./sst_process.ts";
import { evaluate, type GaleraReadings, type Verdict } from "./rules.ts";
import { StatusReader } from "./status_reader.ts";

const log = getLogger(["galerad", "agent"]);

/** The agent's settings, validated by the CLI. */
export interface AgentOptions {
  intervalMs: number;
  /** A reading older than this is not trusted: the node counts as unhealthy. */
  maxAgeMs: number;
  availableWhenDonor: boolean;
  availableWhenReadOnly: boolean;
  /** While this file exists the node is in maintenance; its first line is the message. */
  maintenanceFile?: string;
  /** The server runs on this host, so its SST processes can be seen in /proc. */
  localHost: boolean;
}

/** The cached result HTTP probes are answered from. */
export interface AgentSnapshot {
  verdict: Verdict;
  readings: GaleraReadings;
  checkedAt: number | null;
  error: string | null;
}

/**
 * Polls the local server on its own interval and keeps the last verdict, so a burst of HTTP
 * probes never becomes a burst of queries. Answers are computed from the cache plus the current
 * maintenance switches and the age of the reading.
 */
export class Agent {
  #snapshot: AgentSnapshot = {
    verdict: { healthy: false, reason: "no reading yet" },
    readings: {},
    checkedAt: null,
    error: null,
  };
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  #lastLogged: Verdict | null = null;
  /** Maintenance switched on through the API, with its message. */
  apiMaintenance: string | null = null;

  constructor(readonly reader: StatusReader, readonly options: AgentOptions) {}

  /** Starts polling; resolves after the first reading (successful or not). */
  async start(): Promise<void> {
    await this.poll();
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.reader.close();
  }

  /** The lost-connection callback of the reader: mark the node down at once. */
  lost(reason: string): void {
    this.#snapshot = { ...this.#snapshot, error: reason, checkedAt: Date.now(), readings: {} };
    this.#report();
  }

  async poll(): Promise<void> {
    try {
      const readings = await this.reader.read();
      if (readings.wsrep_local_state === "2" && this.options.localHost) {
        const sst = sstDonorRunning();
        if (sst !== null) readings.sst_donor_running = sst ? "ON" : "OFF";
      }
      this.#snapshot = {
        verdict: this.#snapshot.verdict,
        readings,
        checkedAt: Date.now(),
        error: null,
      };
    } catch (error) {
      this.#snapshot = {
        ...this.#snapshot,
        readings: {},
        checkedAt: Date.now(),
        error: (error as Error).message,
      };
    }
    this.#report();
  }

  /** The maintenance message in force (API switch or file), or null. */
  maintenance(): string | null {
    if (this.apiMaintenance !== null) return this.apiMaintenance;
    const file = this.options.maintenanceFile;
    if (file && existsSync(file)) {
      let message = "";
      try {
        message = readFileSync(file, "utf8").split("\n")[0].trim();
      } catch {
        // unreadable: still in maintenance
      }
      return message || `file ${file} exists`;
    }
    return null;
  }

  /** The current answer: cached reading, judged now (age and maintenance included). */
  current(now = Date.now()): AgentSnapshot {
    const s = this.#snapshot;
    let verdict: Verdict;
    if (s.error !== null) verdict = { healthy: false, reason: s.error };
    else if (s.checkedAt === null) verdict = { healthy: false, reason: "no reading yet" };
    else if (now - s.checkedAt > this.options.maxAgeMs) {
      verdict = {
        healthy: false,
        reason: `last reading is ${now - s.checkedAt}ms old (limit ${this.options.maxAgeMs}ms)`,
      };
    } else {
      verdict = evaluate(s.readings, {
        availableWhenDonor: this.options.availableWhenDonor,
        availableWhenReadOnly: this.options.availableWhenReadOnly,
        maintenance: this.maintenance(),
      });
    }
    return { ...s, verdict };
  }

  #report(): void {
    const verdict = this.current().verdict;
    this.#snapshot = { ...this.#snapshot, verdict };
    const last = this.#lastLogged;
    if (last && last.healthy === verdict.healthy && last.reason === verdict.reason) return;
    this.#lastLogged = verdict;
    const fields = { healthy: verdict.healthy, reason: verdict.reason };
    if (verdict.healthy) log.info("node is healthy: {reason}", fields);
    else log.warn("node is unhealthy: {reason}", fields);
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(async () => {
      await this.poll();
      this.#schedule();
    }, this.options.intervalMs);
  }
}
