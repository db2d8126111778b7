/**
 * Drives scripts/galera-lab.sh for end-to-end tests: a real 3-node MariaDB Galera cluster on
 * loopback, in its own folder and ports so it never collides with the demo's lab.
 */
import process from "node:process";
import { execFile } from "node:child_process";
import path from "node:path";
import mysql from "mysql2/promise";
import { ROOT } from "./spawn.ts";

export interface Lab {
  dir: string;
  nodes: number;
  port(i: number): number;
  socket(i: number): string;
  run(...args: string[]): Promise<string>;
  sql(i: number, sql: string): Promise<string>;
  status(i: number, name: string): Promise<string | null>;
}

export function lab(
  options: { dir: string; port: number; galeraPort: number; nodes?: number },
): Lab {
  const env = {
    ...process.env,
    LAB_DIR: options.dir,
    LAB_PORT: String(options.port),
    LAB_GALERA_PORT: String(options.galeraPort),
  };
  const run = (...args: string[]) =>
    new Promise<string>((resolve, reject) => {
      execFile("bash", [path.join(ROOT, "scripts/galera-lab.sh"), ...args], {
        env,
        timeout: 300_000,
      }, (error, stdout, stderr) => {
        if (error) {
          reject(
            new Error(
              `galera-lab.sh ${args.join(" ")} failed: ${
                stderr.trim().split("\n").slice(-5).join(" | ")
              }`,
            ),
          );
        } else resolve(stdout);
      });
    });
  const self: Lab = {
    dir: options.dir,
    nodes: options.nodes ?? 3,
    port: (i) => options.port + i,
    socket: (i) => path.join(options.dir, `node${i}`, "mysqld.sock"),
    run,
    sql: (i, sql) => run("sql", String(i), sql),
    status: async (i, name) => {
      try {
        const out = await run("sql", String(i), `SHOW GLOBAL STATUS LIKE '${name}'`);
        return out.trim().split(/\s+/)[1] ?? null;
      } catch {
        return null;
      }
    },
  };
  return self;
}

/** A connection as the lab's SQL user through `port` on this host, with short timeouts. */
export function connect(
  port: number,
  options: mysql.ConnectionOptions = {},
): Promise<mysql.Connection> {
  return mysql.createConnection({
    host: "127.0.0.1",
    port,
    user: "lab",
    password: "lab",
    database: "lab",
    connectTimeout: 3000,
    ...options,
  });
}

/** Which lab node a connection through the proxy reached. */
export async function whichPort(port: number): Promise<number> {
  const conn = await connect(port);
  try {
    const [rows] = await conn.query("SELECT @@port AS port");
    return (rows as { port: number }[])[0].port;
  } finally {
    await conn.end().catch(() => {});
  }
}
