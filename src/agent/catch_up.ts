import type mysql from "mysql2";
import { connectMysql, describeMysqlError, type MysqlTarget } from "./mysql_connect.ts";

/** The outcome of one catch-up wait. */
export type CatchUpResult =
  | { ok: true; lastCommitted: number | null; ms: number }
  | { ok: false; reason: string; ms: number };

/**
 * Waits until this node has applied every write set the cluster ordered before the call: a
 * causal read (`wsrep_sync_wait`) on a connection of its own. A proxy asks this of the node
 * it moves to before letting clients in, so that their first transactions never start from a
 * snapshot older than the last commits of the node they leave (which would fail certification:
 * error 1213). Callers that arrive while a wait runs share the next one, never the running one:
 * a wait that began before a caller asked proves nothing about what preceded the ask.
 */
export class CatchUp {
  #running: Promise<CatchUpResult> | null = null;
  #next: Promise<CatchUpResult> | null = null;

  constructor(readonly target: MysqlTarget) {}

  wait(timeoutMs: number): Promise<CatchUpResult> {
    if (!this.#running) return this.#start(timeoutMs);
    this.#next ??= this.#running.then(() => {
      this.#next = null;
      return this.#start(timeoutMs);
    });
    return this.#next;
  }

  #start(timeoutMs: number): Promise<CatchUpResult> {
    const run = this.#once(timeoutMs).finally(() => {
      if (this.#running === run) this.#running = null;
    });
    this.#running = run;
    return run;
  }

  async #once(timeoutMs: number): Promise<CatchUpResult> {
    const started = performance.now();
    const ms = () => Math.round(performance.now() - started);
    let conn: mysql.Connection | null = null;
    try {
      conn = await connectMysql({
        ...this.target,
        connectTimeoutMs: Math.min(timeoutMs, this.target.connectTimeoutMs),
      });
      const left = Math.max(1, timeoutMs - ms());
      // Bit 1 makes a SELECT wait for causality (a SHOW does not); this SELECT is that read.
      await query(conn, "SET SESSION wsrep_sync_wait = 1", left);
      await query(conn, "SELECT 1", Math.max(1, timeoutMs - ms()));
      const rows = await query(
        conn,
        "SHOW GLOBAL STATUS LIKE 'wsrep_last_committed'",
        Math.max(1, timeoutMs - ms()),
      ) as { Value?: unknown }[];
      const c = Number(rows[0]?.Value);
      return { ok: true, lastCommitted: Number.isSafeInteger(c) ? c : null, ms: ms() };
    } catch (error) {
      return {
        ok: false,
        reason: error instanceof Error ? error.message : String(error),
        ms: ms(),
      };
    } finally {
      conn?.destroy();
    }
  }
}

function query(conn: mysql.Connection, sql: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    conn.query({ sql, timeout: timeoutMs }, (error, rows) => {
      if (error) reject(new Error(`${sql}: ${describeMysqlError(error)}`, { cause: error }));
      else resolve(rows);
    });
  });
}
