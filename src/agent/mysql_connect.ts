import type mysql from "mysql2";

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

/** `host:port` or `socket PATH`, for messages. */
export function describeTarget(t: MysqlTarget): string {
  return t.socketPath ? `socket ${t.socketPath}` : `${t.host}:${t.port}`;
}

/** A mysql2 error as one line: its code and message, once each. */
export function describeMysqlError(error: unknown): string {
  const e = error as { code?: string; message?: string };
  if (e.code && e.message && !e.message.includes(e.code)) return `${e.code}: ${e.message}`;
  return e.message ?? e.code ?? String(error);
}

/**
 * Opens one connection to the local server; rejects with a one-line Error naming the target.
 * mysql2 is loaded on first use: it costs a lot of RSS (docs/BENCHMARKS.md), which the proxy
 * (the same binary) never needs.
 */
export async function connectMysql(t: MysqlTarget): Promise<mysql.Connection> {
  const { default: mysql } = await import("mysql2");
  return await new Promise<mysql.Connection>((resolve, reject) => {
    const conn = mysql.createConnection({
      ...(t.socketPath ? { socketPath: t.socketPath } : { host: t.host, port: t.port }),
      user: t.user,
      password: t.password,
      connectTimeout: t.connectTimeoutMs,
    });
    // Errors are taken through callbacks; an unheard "error" event must not throw.
    conn.on("error", () => {});
    conn.connect((error) => {
      if (!error) return resolve(conn);
      conn.destroy();
      reject(
        new Error(
          `cannot connect to MariaDB at ${describeTarget(t)}: ${describeMysqlError(error)}`,
          {
            cause: error,
          },
        ),
      );
    });
  });
}
