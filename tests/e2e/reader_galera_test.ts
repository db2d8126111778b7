/**
 * The reader port on a real Galera cluster: reads through `--reader-listen` and writes through
 * the writer port at the same time, through kill -9 of a reader node and then of the active
 * node. The writers must see no certification failure (1213); reads must resume on a survivor.
 * (mysql2 clients rather than sysbench here: sysbench 1.0.20 with Debian's libmariadb does not
 * reconnect after a lost connection, akopytov/sysbench#527; the read benchmark uses sysbench.)
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import mysql from "mysql2/promise";
import { connect, type Lab, lab } from "../../scripts/lab/lab.ts";
import { waitFor } from "../../scripts/lab/fixtures.ts";
import { type Daemon, props, startDaemon } from "../../scripts/lab/spawn.ts";
import { startClients, updateHotRow } from "../helpers/lab_clients.ts";
import { waitForOk } from "../helpers/stall_report.ts";

const L: Lab = lab({ dir: "/tmp/galerad-e2e-reader-lab", port: 11306, galeraPort: 11567 });
const AGENT_PORT = 11200;
const WRITER_PORT = 11300;
const READER_PORT = 11301;
const API_PORT = 11380;
const auth = { Authorization: `Basic ${btoa("admin:lab-secret-pw")}` };
const agents: Daemon[] = [];
let proxy: Daemon;

const api = async (path: string) =>
  await (await fetch(`http://127.0.0.1:${API_PORT}${path}`, { headers: auth })).json();

beforeAll(async () => {
  await L.run("destroy");
  await L.run("up", "3");
  await L.sql(0, "CREATE TABLE IF NOT EXISTS lab.hot (id INT PRIMARY KEY, v INT NOT NULL)");
  await L.sql(0, "REPLACE INTO lab.hot VALUES (1, 0), (2, 0), (3, 0)");
  for (let i = 0; i < 3; i++) {
    agents.push(startDaemon([
      "healthcheck",
      "--listen",
      `127.0.0.1:${AGENT_PORT + i}`,
      "--mysql-socket",
      L.socket(i),
      "--interval",
      "200ms",
    ]));
  }
  await waitFor("agents answering 200", async () => {
    for (let i = 0; i < 3; i++) {
      if ((await fetch(`http://127.0.0.1:${AGENT_PORT + i}/`).catch(() => null))?.status !== 200) {
        return false;
      }
    }
    return true;
  }, 60_000);
  proxy = startDaemon([
    "proxy",
    "--listen",
    `127.0.0.1:${WRITER_PORT}`,
    "--reader-listen",
    `127.0.0.1:${READER_PORT}`,
    "--api-listen",
    `127.0.0.1:${API_PORT}`,
    "--health-listen",
    "127.0.0.1:0",
    "--api-password",
    "lab-secret-pw",
    "--interval",
    "200ms",
    ...[0, 1, 2].flatMap((i) => [
      "--backend",
      `node${i}=127.0.0.1:${L.port(i)},health=http://127.0.0.1:${AGENT_PORT + i}`,
    ]),
  ]);
  await proxy.waitForLog("an active node", (l) => typeof props(l).active === "string", 30_000);
  await waitFor(
    "every backend healthy",
    async () => (await api("/v0/backends")).every((b: { healthy: boolean }) => b.healthy),
    60_000,
  );
}, 300_000);

afterAll(async () => {
  await proxy?.stop();
  for (const a of agents) await a.stop();
  await L.run("destroy");
}, 120_000);

/** `count` clients through `port` (the lab user), reconnecting after every failure. */
const clients = (port: number, count: number, work: (c: mysql.Connection) => Promise<unknown>) =>
  startClients({
    count,
    work,
    pauseMs: 50,
    connect: () => connect(port, { connectTimeout: 10_000, database: undefined }),
  });

describe("the reader port on a real Galera cluster", () => {
  test(
    "reads spread over the non-active nodes; through kill -9 of a reader and of the writer: zero 1213, reads resume",
    async () => {
      const active = (await api("/v0/cluster")).activeBackend as string;
      const k = Number(active.replace("node", ""));
      const writers = clients(WRITER_PORT, 4, updateHotRow);
      const readNodes = new Set<number>();
      const readers = clients(READER_PORT, 4, async (c) => {
        const [rows] = await c.query("SELECT @@port AS p, SUM(v) AS s FROM lab.hot");
        readNodes.add(Number((rows as { p: number }[])[0].p));
      });
      try {
        await waitFor("reads on both other nodes", () => readNodes.size === 2, 15_000);
        expect(readNodes.has(L.port(k))).toBe(false);
        const backends = await api("/v0/backends");
        const activeRow = backends.find((b: { name: string }) => b.name === active);
        expect(activeRow.readerSessionCount).toBe(0);
        expect(
          backends.filter((b: { readerSessionCount: number }) => b.readerSessionCount > 0).length,
        ).toBe(2);

        // kill -9 of a reader node: its readers are severed and reconnect to the other reader.
        const reader = (k + 1) % 3;
        await L.run("kill", String(reader));
        await waitFor(
          "the killed reader node unhealthy",
          async () =>
            (await api("/v0/backends")).find((b: { name: string }) => b.name === `node${reader}`)
              ?.healthy === false,
          30_000,
        );
        let mark = readers.stats.ok;
        await waitForOk("reads resume", readers.stats, mark + 50, 30_000, L);

        // The reader node rejoins (two of three alone would lose the Primary component).
        await L.run("start", String(reader));
        await waitFor(
          "the rejoined reader healthy",
          async () =>
            (await api("/v0/backends")).find((b: { name: string }) => b.name === `node${reader}`)
              ?.healthy === true,
          60_000,
        );

        // kill -9 of the active node: the writer moves to a survivor, readers to the other.
        await L.run("kill", String(k));
        await waitFor(
          "a new writer",
          async () => {
            const now = (await api("/v0/cluster")).activeBackend;
            return now !== null && now !== active;
          },
          60_000,
        );
        mark = readers.stats.ok;
        const writes = writers.stats.ok;
        await waitForOk("reads resume on the survivor", readers.stats, mark + 50, 60_000, L);
        await waitForOk("writes resume", writers.stats, writes + 50, 60_000, L);
      } finally {
        const w = await writers.stop();
        const r = await readers.stop();
        console.log(
          `writers ok ${w.ok} 1213 ${w.deadlocks} other ${w.otherErrors}; readers ok ${r.ok} errors ${r.otherErrors}`,
        );
        expect(w.deadlocks).toBe(0);
        await L.run("start", String(k)).catch(() => {});
      }
    },
    300_000,
  );
});
