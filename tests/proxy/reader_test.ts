import { afterEach, describe, expect, test } from "bun:test";
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

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function rig(indexes: number[], options: Partial<ProxyOptions> = {}, extra: string[] = []) {
  const backends: TestBackend[] = [];
  const agents: TestAgent[] = [];
  for (const [i, index] of indexes.entries()) {
    const backend = await startBackend(`db${i}`);
    const agent = await startAgent({ healthy: true, index });
    backends.push(backend);
    agents.push(agent);
    cleanups.push(() => backend.close(), () => agent.close());
  }
  const proxy = new Proxy({
    listen: { host: "127.0.0.1", port: 0 },
    readerListen: { host: "127.0.0.1", port: 0 },
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
    shutdownTimeoutMs: 500,
    ...options,
  });
  await proxy.start();
  cleanups.push(() => proxy.shutdown());
  await proxy.whenReady();
  return { proxy, backends, agents, readerPort: proxy.reader!.port };
}

const ready = async (proxy: Proxy, port = "reader") => {
  const r = await createHealthApp(proxy).request(`/ready?port=${port}`);
  return `${r.status} ${(await r.text()).trim()}`;
};

describe("reader port", () => {
  test("spreads readers over the non-active nodes, fewest sessions first, never the writer", async () => {
    const { proxy, readerPort } = await rig([0, 1, 2]);
    expect(proxy.active).toBe("db0");
    const seen: string[] = [];
    const clients = [];
    for (let i = 0; i < 4; i++) {
      const c = await connectClient(readerPort);
      const hello = await c.waitFor("hello");
      seen.push(hello.match(/hello (db\d)/)![1]);
      clients.push(c);
    }
    expect(seen).toEqual(["db1", "db2", "db1", "db2"]);
    expect(proxy.reader!.sessionsOn("db1")).toBe(2);
    expect(proxy.backends.get("db1")!.sessions.size).toBe(0); // not writer sessions
    expect(proxy.reader!.counters.accepted).toBe(4);
    expect(await ready(proxy)).toBe("200 ready: db1");
    for (const c of clients) c.socket.destroy();
  });

  test("a reader node that turns unhealthy is severed; after a failover readers avoid the new writer", async () => {
    const { proxy, agents, readerPort } = await rig([0, 1, 2]);
    const onDb1 = await connectClient(readerPort);
    await onDb1.waitFor("hello db1");
    const onDb2 = await connectClient(readerPort);
    await onDb2.waitFor("hello db2");
    agents[2].set({ healthy: false });
    await onDb2.closed;
    expect(proxy.reader!.counters.severed).toBe(1);
    agents[0].set({ healthy: false });
    await waitFor("db1 is the writer", () => proxy.active === "db1");
    // Fallback active: the readers' node became the writer; they stay, and new ones go there.
    expect(onDb1.isClosed()).toBe(false);
    const next = await connectClient(readerPort);
    await next.waitFor("hello db1");
    agents[2].set({ healthy: true });
    await waitFor("db2 healthy", () => proxy.backends.get("db2")!.health.status === "healthy");
    const back = await connectClient(readerPort);
    await back.waitFor("hello db2");
    for (const c of [onDb1, next, back]) c.socket.destroy();
  });

  test("--reader-fallback refuse: severed when its node becomes the writer; refused with an error packet", async () => {
    const { proxy, agents, readerPort } = await rig([0, 1], { readerFallback: "refuse" });
    const r = await connectClient(readerPort);
    await r.waitFor("hello db1");
    agents[0].set({ healthy: false });
    await waitFor("db1 is the writer", () => proxy.active === "db1");
    await r.closed;
    const refused = await connectClient(readerPort);
    await refused.waitFor("--reader-fallback is refuse");
    expect(refused.received).toContain(
      "galerad: no healthy node but the active one (db1), and --reader-fallback is refuse",
    );
    expect(proxy.reader!.counters.refused.no_reader).toBe(1);
    expect(await ready(proxy)).toStartWith("503 not ready: no healthy node but the active one");
    expect(await ready(proxy, "writer")).toBe("200 ready: db1");
    expect(await ready(proxy, "nope")).toBe(
      '400 port must be writer or reader: current value is "nope"',
    );
  });

  test("a writer=false node serves readers and is never the writer", async () => {
    const { proxy, agents, readerPort } = await rig([1, 0], {}, ["", "writer=false"]);
    expect(proxy.active).toBe("db0");
    const r = await connectClient(readerPort);
    await r.waitFor("hello db1");
    agents[0].set({ healthy: false });
    await waitFor("no writer", () => proxy.active === null);
    expect(r.isClosed()).toBe(false);
    const again = await connectClient(readerPort);
    await again.waitFor("hello db1");
    for (const c of [r, again]) c.socket.destroy();
  });
});
