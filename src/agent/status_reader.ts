import type mysql from "mysql2";
import { type GaleraReadings, STATUS_NAMES, VARIABLE_NAMES } from "./rules.ts";

/** Where and how the agent connects to the local server. */
export interface MysqlTarget {
  socketPath?: string;
  host: string;
  port: number;
  user: string;
  password: string;
  connectTimeoutMs: number;
  queryTimeoutMs: number;
}

const STATUS_SQL = `SHOW GLOBAL STATUS WHERE Variable_name IN (${
  STATUS_NAMES.map((n) => `'${n}'`).join(",")
})`;
const VARIABLES_SQL = `SHOW GLOBAL VARIABLES WHERE Variable_name IN (${
  VARIABLE_NAMES.map((n) => `'${n}'`).join(",")
})`;

/**
 * Reads Galera status over one persistent connection, reconnecting after any failure. A lost
 * connection is reported at once through `onLost` (a killed server shows within milliseconds,
 * not at the next poll).
 */
export class StatusReader {
  #conn: mysql.Connection | null = null;
  #connecting: Promise<mysql.Connection> | null = null;

  constructor(readonly target: MysqlTarget, readonly onLost: (reason: string) => void = () => {}) {}

  /** One reading of status and variables; throws an Error with a one-line message. */
  async read(): Promise<GaleraReadings> {
    const conn = await this.#connection();
    try {
      const [status, variables] = await Promise.all([
        this.#query(conn, STATUS_SQL),
        this.#query(conn, VARIABLES_SQL),
      ]);
      return { ...status, ...variables };
    } catch (error) {
      this.#drop(conn);
      throw error;
    }
  }

  close(): void {
    if (this.#conn) this.#drop(this.#conn);
  }

  #query(conn: mysql.Connection, sql: string): Promise<GaleraReadings> {
    return new Promise((resolve, reject) => {
      conn.query({ sql, timeout: this.target.queryTimeoutMs }, (error, rows) => {
        if (error) return reject(new Error(`query failed: ${describe(error)}`, { cause: error }));
        const out: GaleraReadings = {};
        for (const row of rows as { Variable_name: string; Value: string }[]) {
          out[row.Variable_name.toLowerCase()] = String(row.Value);
        }
        resolve(out);
      });
    });
  }

  #connection(): Promise<mysql.Connection> {
    if (this.#conn) return Promise.resolve(this.#conn);
    if (this.#connecting) return this.#connecting;
    const t = this.target;
    const where = t.socketPath ? `socket ${t.socketPath}` : `${t.host}:${t.port}`;
    // mysql2 is loaded on first use: it costs ~19 MiB of RSS, which the proxy (the same binary)
    // never needs.
    this.#connecting = import("mysql2").then(({ default: mysql }) =>
      new Promise<mysql.Connection>((resolve, reject) => {
        const conn = mysql.createConnection({
          ...(t.socketPath ? { socketPath: t.socketPath } : { host: t.host, port: t.port }),
          user: t.user,
          password: t.password,
          connectTimeout: t.connectTimeoutMs,
        });
        let settled = false;
        conn.on("error", (error) => {
          if (!settled) return;
          if (this.#conn === conn) {
            this.#drop(conn);
            this.onLost(`lost connection to MariaDB at ${where}: ${describe(error)}`);
          }
        });
        conn.on("end", () => {
          if (settled && this.#conn === conn) {
            this.#drop(conn);
            this.onLost(`MariaDB at ${where} closed the connection`);
          }
        });
        conn.connect((error) => {
          settled = true;
          if (error) {
            conn.destroy();
            return reject(
              new Error(`cannot connect to MariaDB at ${where}: ${describe(error)}`, {
                cause: error,
              }),
            );
          }
          this.#conn = conn;
          resolve(conn);
        });
      })
    ).finally(() => (this.#connecting = null));
    return this.#connecting;
  }

  #drop(conn: mysql.Connection): void {
    if (this.#conn === conn) this.#conn = null;
    conn.destroy();
  }
}

function describe(error: unknown): string {
  const e = error as { code?: string; message?: string };
  if (e.code && e.message && !e.message.includes(e.code)) return `${e.code}: ${e.message}`;
  return e.message ?? e.code ?? String(error);
}
