/**
 * Clients of the Galera lab for the end-to-end tests: each runs `work` in a loop on its own
 * connection, reconnecting after any failure, and counts what it saw — statements done,
 * certification failures (1213, the one error that means two writers) and every other error.
 */
import mysql from "mysql2/promise";

export interface ClientStats {
  ok: number;
  deadlocks: number;
  otherErrors: number;
  /**
   * Statements with no answer within STATEMENT_LIMIT_MS (counted in `otherErrors` too): a
   * session a sever should have ended but left hanging shows here, not as a test timeout.
   */
  stalled: number;
  /** When the last statement succeeded (Date.now()), 0 before any. */
  lastOkAt: number;
}

export interface ClientLoop {
  /** How a client connects (it is asked again after each failure, and every `reuse` statements). */
  connect: () => Promise<mysql.Connection>;
  /** One statement (or a few) on the connection. */
  work: (conn: mysql.Connection) => Promise<unknown>;
  count: number;
  /** Statements per connection before a fresh one; unbounded without it. */
  reuse?: number;
  /** The pause after a failure before the next try. */
  pauseMs?: number;
}

/**
 * The longest a statement may wait for its answer. Above Galera's own pauses (a killed node is
 * evicted within about 15 s, commits waiting meanwhile), far below the tests' time limits.
 */
export const STATEMENT_LIMIT_MS = 60_000;

/** The hot-row update every writer test runs: the rows two writers would fight over. */
export const updateHotRow = (conn: mysql.Connection) =>
  conn.query({
    sql: "UPDATE lab.hot SET v = v + 1 WHERE id = ?",
    values: [1 + Math.floor(Math.random() * 3)],
    timeout: STATEMENT_LIMIT_MS,
  });

/** Starts `count` clients; `stop` ends them after their current statement, with the counts. */
export function startClients(o: ClientLoop) {
  const stats: ClientStats = { ok: 0, deadlocks: 0, otherErrors: 0, stalled: 0, lastOkAt: 0 };
  let stop = false;
  const one = async () => {
    let conn: mysql.Connection | null = null;
    let used = 0;
    while (!stop) {
      try {
        if (!conn || (o.reuse !== undefined && used >= o.reuse)) {
          await conn?.end().catch(() => {});
          conn = null;
          conn = await o.connect();
          used = 0;
        }
        used++;
        await o.work(conn);
        stats.ok++;
        stats.lastOkAt = Date.now();
      } catch (error) {
        if ((error as { errno?: number }).errno === 1213) stats.deadlocks++;
        else stats.otherErrors++;
        if ((error as { code?: string }).code === "PROTOCOL_SEQUENCE_TIMEOUT") stats.stalled++;
        conn?.destroy();
        conn = null;
        await new Promise((r) => setTimeout(r, o.pauseMs ?? 20));
      }
    }
    await conn?.end().catch(() => {});
  };
  const done = Promise.all(Array.from({ length: o.count }, one));
  return { stats, stop: async () => (stop = true, await done, stats) };
}
