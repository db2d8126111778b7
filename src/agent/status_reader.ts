import type mysql from "mysql2";
import {
  connectMysql,
  describeMysqlError,
  describeTarget,
  type MysqlTarget,
} from "./mysql_connect.ts";

export type { MysqlTarget };
import { type GaleraReadings, STATUS_NAMES, VARIABLE_NAMES } from "./rules.ts";

const STATUS_SQL = `SHOW GLOBAL STATUS WHERE Variable_name IN (${
  STATUS_NAMES.map((n) => `'${n}'`).join(",")
})`;
const VARIABLES_SQL = `SHOW GLOBAL VARIABLES WHERE Variable_name IN (${
  VARIABLE_NAMES.map((n) => `'${n}'`).join(",")
})`;

/**
 * Client sessions on this server, as a Variable_name/Value row like the others: everything but
 * the server's own threads and this connection (planned maintenance waits for it to reach 0).
 * NULL without the PROCESS privilege, which sees only its own sessions: no count beats a false 0.
 */
const SESSIONS_SQL = `SELECT 'client_sessions' AS Variable_name,
  IF(EXISTS(SELECT 1 FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE = 'PROCESS'),
    (SELECT COUNT(*) FROM information_schema.PROCESSLIST
      WHERE ID <> CONNECTION_ID() AND USER NOT IN ('system user', 'event_scheduler')
        AND COMMAND NOT IN ('Daemon', 'Binlog Dump', 'Binlog Dump GTID')),
    NULL) AS Value`;

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
      const [status, variables, sessions] = await Promise.all([
        this.#query(conn, STATUS_SQL),
        this.#query(conn, VARIABLES_SQL),
        this.#query(conn, SESSIONS_SQL),
      ]);
      return { ...status, ...variables, ...sessions };
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
        if (error) {
          return reject(new Error(`query failed: ${describeMysqlError(error)}`, { cause: error }));
        }
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
    const where = describeTarget(this.target);
    this.#connecting = connectMysql(this.target).then((conn) => {
      conn.on("error", (error) => {
        if (this.#conn === conn) {
          this.#drop(conn);
          this.onLost(`lost connection to MariaDB at ${where}: ${describeMysqlError(error)}`);
        }
      });
      conn.on("end", () => {
        if (this.#conn === conn) {
          this.#drop(conn);
          this.onLost(`MariaDB at ${where} closed the connection`);
        }
      });
      this.#conn = conn;
      return conn;
    }).finally(() => (this.#connecting = null));
    return this.#connecting;
  }

  #drop(conn: mysql.Connection): void {
    if (this.#conn === conn) this.#conn = null;
    conn.destroy();
  }
}
