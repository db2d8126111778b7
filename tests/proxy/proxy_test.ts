import { afterEach, describe, expect, test } from "bun:test";
import net from "node:net";
import { parseBackendSpec } from "../../src/core/backend_spec.ts";
import { createHealthApp } from "../../src/proxy/api.ts";
import { Proxy, type ProxyOptions } from "../../src/proxy/proxy.ts";
import {
  connectClient,
  startAgent,
  startBackend,
  type TestAgent,
  type TestBackend,
  waitFor,
} from "../../scripts/lab/fixtures.ts";

interface Rig {
  proxy: Proxy;
  backends: TestBackend[];
  agents: TestAgent[];
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function rig(
  indexes: number[],
  options: Partial<ProxyOptions> = {},
  askCatchUp?: ConstructorParameters<typeof Proxy>[2],
  extra: string[] = [],
): Promise<Rig> {
  const backends: TestBackend[] = [];
  const agents: TestAgent[] = [];
  for (const [i, index] of indexes.entries()) {
    const backend = await startBackend(`db${i}`);
    const agent = await startAgent({ healthy: true, index });
    backends.push(backend);
    agents.push(agent);
    cleanups.push(() => backend.close(), () => agent.close());
  }
  const proxy = new Proxy(
    {
      listen: { host: "127.0.0.1", port: 0 },
      backends: backends.map((b, i) =>
        parseBackendSpec(
          `${b.name}=127.0.0.1:${b.port},health=${agents[i].url}${extra[i] ? `,${extra[i]}` : ""}`,
        )
      ),
      intervalMs: 50,
      timeoutMs: 200,
      rise: 2,
      fall: 2,
      connectTimeoutMs: 1000,
      keepAliveMs: 1000,
      shutdownTimeoutMs: 2000,
      ...options,
    },
    undefined,
    askCatchUp,
  );
  await proxy.start();
  cleanups.push(() => proxy.shutdown());
  await proxy.whenReady();
  return { proxy, backends, agents };
}

describe("Proxy", () => {
  test("routes clients to the healthy node with the lowest wsrep_local_index and pipes both ways", async () => {
    const { proxy } = await rig([2, 0, 1]);
    expect(proxy.active).toBe("db1");
    const client = await connectClient(proxy.port);
    await client.waitFor("hello db1\n");
    client.send("ping");
    await client.waitFor("ping");
    expect(proxy.backends.get("db1")!.sessions.size).toBe(1);
    client.socket.destroy();
  });

  test("fails over when the active node turns unhealthy and severs its sessions", async () => {
    const { proxy, agents, backends } = await rig([0, 1]);
    const old = await connectClient(proxy.port);
    await old.waitFor("hello db0");
    agents[0].set({ healthy: false });
    await old.closed;
    // The new node is served once the data plane has confirmed the old node's sessions closed.
    await waitFor("db1 active", () => proxy.active === "db1");
    await waitFor("backend db0 sockets closed", () => backends[0].open === 0);
    const fresh = await connectClient(proxy.port);
    await fresh.waitFor("hello db1");
    fresh.socket.destroy();
    expect(proxy.counters.severed).toBeGreaterThanOrEqual(1);
  });

  test("after a failover, new clients wait until the new node caught up; a first choice does not ask", async () => {
    const asked: string[] = [];
    let caughtUp!: () => void;
    const gate = new Promise<void>((r) => (caughtUp = r));
    const { proxy, agents } = await rig([0, 1], {}, async (url, timeoutMs) => {
      asked.push(`${url} ${timeoutMs}`);
      await gate;
      return { ok: true, reason: "caught up at seqno 7", ms: 1 };
    });
    const first = await connectClient(proxy.port);
    await first.waitFor("hello db0");
    expect(asked).toEqual([]);
    agents[0].set({ healthy: false });
    await waitFor("db1 active", () => proxy.active === "db1");
    expect(asked).toEqual([`${agents[1].url} 10000`]);
    const held = await connectClient(proxy.port);
    await new Promise((r) => setTimeout(r, 300));
    expect(held.received).toBe("");
    caughtUp();
    await held.waitFor("hello db1");
    expect(proxy.events.list().some((e) => e.kind === "catch-up" && e.message.includes("seqno 7")))
      .toBe(true);
    held.socket.destroy();
    first.socket.destroy();
  });

  test("a node that cannot confirm it caught up is served anyway", async () => {
    const { proxy, agents } = await rig(
      [0, 1],
      {},
      () => Promise.resolve({ ok: false, reason: "agent unreachable: ECONNREFUSED", ms: 2 }),
    );
    agents[0].set({ healthy: false });
    await waitFor("db1 active", () => proxy.active === "db1");
    const client = await connectClient(proxy.port);
    await client.waitFor("hello db1");
    expect(proxy.events.list().some((e) => e.kind === "catch-up" && e.message.includes("anyway")))
      .toBe(true);
    client.socket.destroy();
  });

  test("priorities: the best priority first, then the next; a recovered better node does not take it back", async () => {
    const { proxy, agents } = await rig([0, 1, 2], {}, undefined, [
      "priority=5",
      "priority=1",
      "priority=2",
    ]);
    expect(proxy.active).toBe("db1");
    agents[1].set({ healthy: false });
    await waitFor("failover to db2 (priority 2)", () => proxy.active === "db2");
    const client = await connectClient(proxy.port);
    await client.waitFor("hello db2");
    agents[1].set({ healthy: true });
    await waitFor("db1 healthy", () => proxy.backends.get("db1")!.health.status === "healthy");
    await new Promise((r) => setTimeout(r, 300));
    expect(proxy.active).toBe("db2");
    expect(client.isClosed()).toBe(false);
    client.socket.destroy();
  });

  test("writer=false is never the active node, even when it is the only healthy one", async () => {
    const { proxy, agents } = await rig([1, 0], {}, undefined, ["", "writer=false"]);
    expect(proxy.active).toBe("db0");
    agents[0].set({ healthy: false });
    await waitFor("no active node", () => proxy.active === null);
    await new Promise((r) => setTimeout(r, 300));
    expect(proxy.active).toBeNull();
    const client = await connectClient(proxy.port);
    await client.waitFor("writer=false");
    expect(client.received).toContain(
      "galerad: no healthy Galera node may be the writer: db1 is writer=false",
    );
    expect(proxy.counters.refused.no_active_node).toBeGreaterThanOrEqual(1);
  });

  test("--shutdown-delay: /ready fails at once while clients are still served, then the port closes", async () => {
    const { proxy } = await rig([0, 1], { shutdownDelayMs: 600 });
    const ready = async () => (await createHealthApp(proxy).request("/ready")).status;
    expect(await ready()).toBe(200);
    const stopped = proxy.shutdown();
    expect(await ready()).toBe(503);
    expect(await (await createHealthApp(proxy).request("/ready")).text()).toBe(
      "not ready: stopping\n",
    );
    const during = await connectClient(proxy.port);
    await during.waitFor("hello db0");
    during.socket.destroy();
    await stopped;
    await expect(connectClient(proxy.port)).rejects.toThrow();
  });

  test("--client-idle-timeout closes a silent client's session; a talking one stays", async () => {
    const { proxy, backends } = await rig([0, 1], { clientIdleTimeoutMs: 400 });
    const silent = await connectClient(proxy.port);
    const talking = await connectClient(proxy.port);
    await silent.waitFor("hello db0");
    await talking.waitFor("hello db0");
    const timer = setInterval(() => talking.send("."), 100);
    try {
      await silent.closed;
      expect(talking.isClosed()).toBe(false);
      expect(proxy.counters.idleClosed).toEqual({ "client idle": 1 });
      await waitFor("the backend side closed too", () => backends[0].open === 1);
    } finally {
      clearInterval(timer);
      talking.socket.destroy();
    }
  });

  test("a backend that accepts but sends no greeting is a failed connect", async () => {
    const mute = net.createServer(() => {}); // accepts, never speaks
    await new Promise<void>((r) => mute.listen(0, "127.0.0.1", () => r()));
    cleanups.push(() => new Promise<void>((r) => mute.close(() => r())));
    const agent = await startAgent({ healthy: true, index: 0 });
    cleanups.push(() => agent.close());
    const proxy = new Proxy({
      listen: { host: "127.0.0.1", port: 0 },
      backends: [parseBackendSpec(
        `db0=127.0.0.1:${(mute.address() as net.AddressInfo).port},health=${agent.url}`,
      )],
      intervalMs: 50,
      timeoutMs: 200,
      rise: 1,
      fall: 1,
      connectTimeoutMs: 200,
      keepAliveMs: 0,
      shutdownTimeoutMs: 100,
    });
    await proxy.start();
    cleanups.push(() => proxy.shutdown());
    await proxy.whenReady();
    const client = await connectClient(proxy.port);
    await client.closed;
    expect(proxy.counters.idleClosed).toEqual({ "no greeting": 1 });
    expect(proxy.counters.connectFailures).toBe(1);
  });

  test("a recovered node does not take traffic back", async () => {
    const { proxy, agents } = await rig([0, 1]);
    agents[0].set({ healthy: false });
    await waitFor("failover to db1", () => proxy.active === "db1");
    const client = await connectClient(proxy.port);
    await client.waitFor("hello db1");
    agents[0].set({ healthy: true });
    await waitFor(
      "db0 healthy again",
      () => proxy.backends.get("db0")!.health.status === "healthy",
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(proxy.active).toBe("db1");
    expect(client.isClosed()).toBe(false);
    client.socket.destroy();
  });

  test("one failed probe is not enough to fail over (fall)", async () => {
    const { proxy, agents } = await rig([0, 1], { fall: 3, intervalMs: 100 });
    agents[0].set({ healthy: false });
    await waitFor("one failed probe", () => proxy.backends.get("db0")!.health.streak >= 1);
    agents[0].set({ healthy: true });
    await new Promise((r) => setTimeout(r, 300));
    expect(proxy.active).toBe("db0");
  });

  test("a hung agent fails its probes by timeout and does not delay the others", async () => {
    const { proxy, agents } = await rig([0, 1], { timeoutMs: 150 });
    agents[0].set({ hang: true });
    await waitFor("failover from the hung agent", () => proxy.active === "db1", 5000);
    expect(proxy.backends.get("db0")!.health.reason).toContain("did not answer within 150ms");
    const before = agents[1].requests;
    await new Promise((r) => setTimeout(r, 400));
    expect(agents[1].requests - before).toBeGreaterThanOrEqual(4);
  });

  test("an unreachable agent counts as unhealthy", async () => {
    const { proxy, agents } = await rig([0, 1]);
    await agents[0].close();
    await waitFor("failover from the unreachable agent", () => proxy.active === "db1");
    expect(proxy.backends.get("db0")!.health.reason).toContain("unreachable");
  });

  test("malformed agent answers are failed probes", async () => {
    const { proxy, agents } = await rig([0, 1]);
    agents[0].set({ garbage: true });
    await waitFor("failover from the garbage agent", () => proxy.active === "db1");
    expect(proxy.backends.get("db0")!.health.reason).toContain("malformed JSON");
  });

  test("falls back to the status code of GET / for clustercheck-only agents", async () => {
    const { proxy, agents } = await rig([0, 1]);
    agents[0].set({ clustercheckOnly: true });
    agents[1].set({ clustercheckOnly: true });
    agents[0].set({ healthy: false });
    await waitFor("failover on a clustercheck 503", () => proxy.active === "db1");
    expect(proxy.backends.get("db0")!.health.reason).toContain("agent answered 503");
  });

  test("with no active node a client gets a MySQL error packet, and it is counted", async () => {
    const { proxy, agents } = await rig([0]);
    agents[0].set({ healthy: false });
    await waitFor("no active node", () => proxy.active === null);
    const client = await connectClient(proxy.port);
    await client.closed;
    expect(client.received.charCodeAt(4)).toBe(0xff);
    expect(client.received).toContain("no healthy Galera node is active");
    expect(proxy.counters.refused.no_active_node).toBe(1);
  });

  test("traffic disabled severs every session and refuses new ones until enabled", async () => {
    const { proxy } = await rig([0, 1]);
    const client = await connectClient(proxy.port);
    await client.waitFor("hello db0");
    proxy.setTraffic(false, "maintenance window");
    await client.closed;
    const refused = await connectClient(proxy.port);
    await refused.closed;
    expect(refused.received).toContain("traffic disabled by operator: maintenance window");
    proxy.setTraffic(true, "");
    const again = await connectClient(proxy.port);
    await again.waitFor("hello db0");
    again.socket.destroy();
  });

  test("half-close: the reply after the client's FIN still arrives", async () => {
    const { proxy } = await rig([0]);
    const client = await connectClient(proxy.port);
    await client.waitFor("hello db0");
    client.socket.end("last words");
    await client.waitFor("last words");
    await client.closed;
  });

  test("an unreachable active node is refused with an error packet naming it", async () => {
    const { proxy, backends } = await rig([0]);
    await backends[0].close();
    const client = await connectClient(proxy.port);
    await client.closed;
    expect(client.received).toContain("cannot reach active node db0");
    expect(proxy.counters.connectFailures).toBe(1);
  });

  test("shutdown stops accepting, lets sessions finish, then closes the rest at the deadline", async () => {
    const { proxy } = await rig([0], { shutdownTimeoutMs: 300 });
    const client = await connectClient(proxy.port);
    await client.waitFor("hello db0");
    const started = Date.now();
    const done = proxy.shutdown();
    await new Promise((r) => setTimeout(r, 100));
    expect(client.isClosed()).toBe(false);
    client.send("still here");
    await client.waitFor("still here");
    await done;
    await client.closed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    await expect(connectClient(proxy.port)).rejects.toThrow();
  });

  test("shutdown returns as soon as the last session ends", async () => {
    const { proxy } = await rig([0], { shutdownTimeoutMs: 10_000 });
    const client = await connectClient(proxy.port);
    await client.waitFor("hello db0");
    const started = Date.now();
    const done = proxy.shutdown();
    setTimeout(() => client.socket.end(), 100);
    await done;
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
