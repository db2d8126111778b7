/**
 * End to end on a real MariaDB Galera cluster: three nodes from Debian's packages, one
 * `galerad healthcheck` per node, one `galerad proxy` in front.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import mysql from "mysql2/promise";
import net from "node:net";
import { connect, type Lab, lab, whichPort } from "../../scripts/lab/lab.ts";
import { waitFor } from "../../scripts/lab/fixtures.ts";
import { type Daemon, props, runCli, startDaemon } from "../../scripts/lab/spawn.ts";

const L: Lab = lab({ dir: "/tmp/galerad-e2e-lab", port: 23306, galeraPort: 24567 });
const AGENT_PORT = 29200;
const PROXY_PORT = 23300;
const API_PORT = 28080;
const auth = { Authorization: `Basic ${btoa("admin:lab-secret-pw")}` };
const agents: Daemon[] = [];
let proxy: Daemon;

function startAgent(i: number, extra: string[] = []): Daemon {
  return startDaemon([
    "healthcheck",
    "--listen",
    `127.0.0.1:${AGENT_PORT + i}`,
    "--mysql-socket",
    L.socket(i),
    "--interval",
    "200ms",
    "--api-password",
    "lab-secret-pw",
    ...extra,
  ]);
}

async function backends(): Promise<
  {
    name: string;
    active: boolean;
    healthy: boolean;
    port: number;
    wsrepLocalIndex: number | null;
  }[]
> {
  return (await fetch(`http://127.0.0.1:${API_PORT}/v0/backends`, { headers: auth })).json();
}
async function active(): Promise<string | null> {
  const cluster = await (await fetch(`http://127.0.0.1:${API_PORT}/v0/cluster`, { headers: auth }))
    .json();
  return cluster.activeBackend;
}
const nodeIndex = (name: string) => Number(name.replace("node", ""));

beforeAll(async () => {
  await L.run("destroy");
  await L.run("up", "3");
  await L.sql(
    0,
    "CREATE TABLE IF NOT EXISTS lab.writes (id INT PRIMARY KEY, at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)",
  );
  for (let i = 0; i < 3; i++) agents.push(startAgent(i));
  // The proxy starts once every agent answers, so its first choice sees every node.
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
    `127.0.0.1:${PROXY_PORT}`,
    "--api-listen",
    `127.0.0.1:${API_PORT}`,
    "--health-listen",
    "127.0.0.1:0",
    "--api-password",
    "lab-secret-pw",
    "--interval",
    "200ms",
    // Galera evicts a killed node after its suspect timeout (about 6 s to the catch-up here); on
    // a loaded machine that passed the default 10 s once. The kill test checks that new sessions
    // wait for a confirmed catch-up, not how fast Galera evicts.
    "--catch-up-timeout",
    "30s",
    ...[0, 1, 2].flatMap((
      i,
    ) => [
      "--backend",
      `node${i}=127.0.0.1:${L.port(i)},health=http://127.0.0.1:${AGENT_PORT + i}`,
    ]),
  ]);
  await proxy.waitForLog("an active node", (l) => typeof props(l).active === "string", 30_000);
  await waitFor(
    "every backend healthy in the proxy",
    async () => (await backends()).every((b) => b.healthy),
    60_000,
  );
}, 300_000);

afterAll(async () => {
  await proxy?.stop();
  for (const a of agents) await a.stop();
  await L.run("destroy");
}, 120_000);

describe("galerad on a real Galera cluster", () => {
  test("the agent serves clustercheck text and galera-agent JSON from the real server", async () => {
    const res = await fetch(`http://127.0.0.1:${AGENT_PORT}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("Galera node is synced\n");
    const status = await (await fetch(`http://127.0.0.1:${AGENT_PORT}/api/v1/status`)).json();
    expect(status).toMatchObject({
      healthy: true,
      wsrep_local_state: 4,
      wsrep_local_state_comment: "Synced",
      wsrep_cluster_status: "Primary",
      wsrep_cluster_size: 3,
      read_only: false,
    });
    expect(typeof status.wsrep_local_index).toBe("number");
    expect(status.wsrep_cluster_state_uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(typeof status.checked_at).toBe("string");
    expect((await fetch(`http://127.0.0.1:${AGENT_PORT}/health`)).status).toBe(200);
    const caughtUp = await fetch(`http://127.0.0.1:${AGENT_PORT}/api/v1/caught_up?timeout_ms=5000`);
    expect(caughtUp.status).toBe(200);
    const body = await caughtUp.json();
    expect(body.caught_up).toBe(true);
    expect(body.wsrep_last_committed).toBeGreaterThanOrEqual(status.wsrep_last_committed);
  });

  test("a client lands on the node with the lowest wsrep_local_index", async () => {
    const list = await backends();
    const lowest =
      list.filter((b) => b.healthy).sort((a, b) => a.wsrepLocalIndex! - b.wsrepLocalIndex!)[0];
    expect(lowest.active).toBe(true);
    expect(await whichPort(PROXY_PORT)).toBe(lowest.port);
  });

  test(
    "kill -9 of the active node: sessions severed, traffic moves, no acknowledged write lost, no failback",
    async () => {
      const first = (await active())!;
      const victim = nodeIndex(first);
      const open = await connect(PROXY_PORT);
      let openClosed = false;
      open.on("error", () => (openClosed = true));
      open.on("end", () => (openClosed = true));

      // A writer through the proxy, reconnecting after every failure.
      const acked: number[] = [];
      let next = 1;
      let stop = false;
      const writer = (async () => {
        let conn: Awaited<ReturnType<typeof connect>> | null = null;
        while (!stop) {
          try {
            conn ??= await connect(PROXY_PORT);
            const id = next++;
            await conn.query("INSERT INTO lab.writes (id) VALUES (?)", [id]);
            acked.push(id);
          } catch {
            await conn?.destroy();
            conn = null;
            await new Promise((r) => setTimeout(r, 50));
          }
        }
        await conn?.end().catch(() => {});
      })();
      await waitFor("some writes before the kill", () => acked.length >= 20);
      await L.run("kill", String(victim));
      // A failure below must not leave the node down for the tests that follow.
      let restarted = false;
      try {
        await waitFor("the open session to be severed", async () => {
          if (openClosed) return true;
          try {
            await open.query("SELECT 1");
            return false;
          } catch {
            return true;
          }
        }, 30_000);
        await waitFor("a new active node", async () => (await active()) !== first, 30_000);
        const second = (await active())!;
        // New sessions waited for the survivor's causal read (it returns once Galera evicted the
        // killed node and the survivor applied what it had ordered before).
        const catchUp = await waitFor("the catch-up on the new node", async () => {
          const events: { kind: string; message: string }[] =
            await (await fetch(`http://127.0.0.1:${API_PORT}/v0/events`, { headers: auth })).json();
          return events.find((e) =>
            e.kind === "catch-up" && (e.message.startsWith(`${second} `) ||
              e.message.startsWith(`cannot confirm ${second} `))
          )?.message;
        }, 45_000);
        expect(catchUp).toStartWith(`${second} caught up at seqno`);
        const ackedAtKill = acked.length;
        await waitFor("writes after the failover", () => acked.length >= ackedAtKill + 20, 60_000);
        stop = true;
        await writer;
        expect(await whichPort(PROXY_PORT)).toBe(L.port(nodeIndex(second)));

        const check = await connect(L.port(nodeIndex(second)));
        const [rows] = await check.query("SELECT id FROM lab.writes");
        await check.end();
        const stored = new Set((rows as { id: number }[]).map((r) => r.id));
        expect(acked.filter((id) => !stored.has(id))).toEqual([]);

        // The killed node rejoins, turns healthy, and does not take traffic back.
        await L.run("start", String(victim));
        restarted = true;
        await waitFor(
          "the rejoined node healthy in the proxy",
          async () => (await backends()).find((b) => b.name === first)?.healthy,
          60_000,
        );
        await new Promise((r) => setTimeout(r, 1000));
        const events =
          await (await fetch(`http://127.0.0.1:${API_PORT}/v0/events`, { headers: auth })).json();
        // The rejoined node never takes traffic back. (Traffic may still move between the
        // survivors: one of them can serve the rejoining node an SST, and a blocked donor is
        // rightly left.)
        const now = await active();
        expect({ active: now, events: events.map((e: { message: string }) => e.message) }).not
          .toMatchObject({ active: first });
        expect(now).not.toBeNull();
        expect(await whichPort(PROXY_PORT)).toBe(L.port(nodeIndex(now!)));
        await open.destroy();
      } finally {
        stop = true;
        if (!restarted) await L.run("start", String(victim)).catch(() => {});
      }
    },
    240_000,
  );

  test("--send-proxy-v2: the server sees the client's address, not the proxy's", async () => {
    for (let i = 0; i < 3; i++) await L.sql(i, "SET GLOBAL proxy_protocol_networks='127.0.0.1'");
    const port = PROXY_PORT + 50;
    const withHeader = startDaemon([
      "proxy",
      "--listen",
      `127.0.0.1:${port}`,
      "--api-listen",
      "127.0.0.1:0",
      "--health-listen",
      "127.0.0.1:0",
      "--api-password",
      "lab-secret-pw",
      "--send-proxy-v2",
      ...[0, 1, 2].flatMap((
        i,
      ) => [
        "--backend",
        `node${i}=127.0.0.1:${L.port(i)},health=http://127.0.0.1:${AGENT_PORT + i}`,
      ]),
    ]);
    // The client connects from 127.0.0.5, the proxies from 127.0.0.1.
    const userVia = async (p: number) => {
      const conn = await mysql.createConnection({
        user: "lab",
        password: "lab",
        stream: () => net.connect({ host: "127.0.0.1", port: p, localAddress: "127.0.0.5" }),
      });
      try {
        const [rows] = await conn.query("SELECT USER() AS u");
        return (rows as { u: string }[])[0].u;
      } finally {
        await conn.end();
      }
    };
    try {
      await withHeader.waitForLog(
        "an active node",
        (l) => typeof props(l).active === "string",
        30_000,
      );
      expect(await userVia(port)).toBe("lab@127.0.0.5");
      expect(await userVia(PROXY_PORT)).toBe("lab@127.0.0.1");
    } finally {
      await withHeader.stop();
      for (let i = 0; i < 3; i++) await L.sql(i, "SET GLOBAL proxy_protocol_networks=''");
    }
  }, 60_000);

  test(
    "wsrep_desync=ON on the active node moves traffic, and OFF does not move it back",
    async () => {
      const first = (await active())!;
      const held = await connect(PROXY_PORT);
      let closed = false;
      held.on("error", () => (closed = true));
      held.on("end", () => (closed = true));
      await L.sql(nodeIndex(first), "SET GLOBAL wsrep_desync=ON");
      try {
        await waitFor(
          "traffic to move off the desynced node",
          async () => (await active()) !== first,
          20_000,
        );
        const reason =
          (await (await fetch(`http://127.0.0.1:${AGENT_PORT + nodeIndex(first)}/api/v1/status`))
            .json()).reason;
        expect(reason).toContain("wsrep_desync is ON");
        await waitFor("the session on the desynced node to be severed", async () => {
          if (closed) {
            return true;
          }
          try {
            await held.query("SELECT 1");
            return false;
          } catch {
            return true;
          }
        });
      } finally {
        await L.sql(nodeIndex(first), "SET GLOBAL wsrep_desync=OFF");
        await held.destroy();
      }
      const second = await active();
      await waitFor(
        "the node healthy again",
        async () => (await backends()).find((b) => b.name === first)?.healthy,
        20_000,
      );
      expect(await active()).toBe(second);
    },
    120_000,
  );

  test("read_only=ON on the active node moves traffic", async () => {
    const first = (await active())!;
    await L.sql(nodeIndex(first), "SET GLOBAL read_only=ON");
    try {
      await waitFor(
        "traffic to move off the read-only node",
        async () => (await active()) !== first,
        20_000,
      );
      expect((await backends()).find((b) => b.name === first)?.healthy).toBe(false);
    } finally {
      await L.sql(nodeIndex(first), "SET GLOBAL read_only=OFF");
    }
  }, 60_000);

  test("a stopped agent (node fine) counts as unhealthy and moves traffic", async () => {
    const first = (await active())!;
    const i = nodeIndex(first);
    await agents[i].stop();
    try {
      await waitFor(
        "traffic to move off the node without an agent",
        async () => (await active()) !== first,
        20_000,
      );
      const b = (await backends()).find((x) => x.name === first) as unknown as {
        healthy: boolean;
        reason: string;
      };
      expect(b.healthy).toBe(false);
      expect(b.reason).toContain("unreachable");
    } finally {
      agents[i] = startAgent(i);
      await waitFor(
        "the agent back",
        async () => (await backends()).find((b) => b.name === first)?.healthy,
        20_000,
      );
    }
  }, 60_000);

  test(
    "with --available-when-donor, a node desynced on purpose (state 2) still counts as unhealthy",
    async () => {
      // wsrep_desync puts a node in state 2 (Donor/Desynced) without an SST. The donor rule must
      // not let it through: an operator desyncs a node to take it out of service.
      const i = nodeIndex((await active())!) === 0 ? 1 : 0;
      const port = AGENT_PORT + 10 + i;
      const relaxed = startDaemon([
        "healthcheck",
        "--listen",
        `127.0.0.1:${port}`,
        "--mysql-socket",
        L.socket(i),
        "--interval",
        "100ms",
        "--available-when-donor",
      ]);
      try {
        await waitFor(
          "the relaxed agent",
          async () => (await fetch(`http://127.0.0.1:${port}/`)).status === 200,
          15_000,
        );
        await L.sql(i, "SET GLOBAL wsrep_desync=ON");
        await waitFor(
          "state 2 seen",
          async () =>
            (await (await fetch(`http://127.0.0.1:${port}/api/v1/status`)).json())
              .wsrep_local_state === 2,
        );
        const s = await (await fetch(`http://127.0.0.1:${port}/api/v1/status`)).json();
        expect(s).toMatchObject({ healthy: false, reason: "wsrep_desync is ON" });
      } finally {
        await L.sql(i, "SET GLOBAL wsrep_desync=OFF");
        await relaxed.stop();
      }
    },
    60_000,
  );

  test(
    "galerad maintenance --wait on the active node: traffic moves, its sessions end, exit 0; --disable",
    async () => {
      const first = (await active())!;
      const i = nodeIndex(first);
      const client = await connect(PROXY_PORT);
      await client.query("SELECT 1");
      await waitFor("the agent counts the session", async () => {
        const s = await (await fetch(`http://127.0.0.1:${AGENT_PORT + i}/api/v1/status`)).json();
        return s.client_sessions >= 1;
      }, 10_000);
      const agentArgs = [
        "--agent",
        `http://127.0.0.1:${AGENT_PORT + i}`,
        "--api-password",
        "lab-secret-pw",
      ];
      const r = await runCli([
        "maintenance",
        ...agentArgs,
        "--enable",
        "kernel update",
        "--wait",
        "--timeout",
        "30s",
      ], { timeoutMs: 40_000 });
      expect({ code: r.code, out: r.stdout.trim(), err: r.stderr.trim() }).toEqual({
        code: 0,
        out: "maintenance on: kernel update\nno client session left on the node",
        err: "",
      });
      expect(await active()).not.toBe(first);
      await expect(client.query("SELECT 1")).rejects.toThrow();
      await client.destroy();
      const off = await runCli(["maintenance", ...agentArgs, "--disable"]);
      expect(off.code).toBe(0);
      await waitFor(
        "the node healthy again",
        async () => (await backends()).find((b) => b.name === first)?.healthy,
        30_000,
      );
      const bad = await runCli(["maintenance", ...agentArgs]);
      expect(bad.code).toBe(2);
      expect(bad.stderr.trim()).toBe("galerad: give exactly one of --enable MESSAGE or --disable");
    },
    90_000,
  );
});
