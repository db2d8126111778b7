/**
 * A smoke run of a reconnect storm: a few hundred clients on the active node, a failover severs
 * them all at once, and they all reconnect in the same instant. Every one must be served by the
 * new node, with no error but the severing itself. (The figures at scale are a benchmark.)
 */
import { afterAll, describe, expect, test } from "bun:test";
import { parseBackendSpec } from "../../src/core/backend_spec.ts";
import { Proxy } from "../../src/proxy/proxy.ts";
import {
  type Client,
  connectClient,
  startAgent,
  startBackend,
  waitFor,
} from "../../scripts/lab/fixtures.ts";

const CLIENTS = 300;
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe("reconnect storm", () => {
  test(`${CLIENTS} clients severed by a failover all reconnect to the new node`, async () => {
    const backends = [await startBackend("db0"), await startBackend("db1")];
    const agents = [
      await startAgent({ healthy: true, index: 0 }),
      await startAgent({ healthy: true, index: 1 }),
    ];
    cleanups.push(...backends.map((b) => () => b.close()), ...agents.map((a) => () => a.close()));
    const proxy = new Proxy({
      listen: { host: "127.0.0.1", port: 0 },
      backends: backends.map((b, i) =>
        parseBackendSpec(`${b.name}=127.0.0.1:${b.port},health=${agents[i].url}`)
      ),
      intervalMs: 50,
      timeoutMs: 300,
      rise: 1,
      fall: 1,
      connectTimeoutMs: 2000,
      keepAliveMs: 0,
      shutdownTimeoutMs: 500,
    });
    await proxy.start();
    cleanups.push(() => proxy.shutdown());
    await proxy.whenReady();
    const first: Client[] = await Promise.all(
      Array.from({ length: CLIENTS }, () => connectClient(proxy.port)),
    );
    await Promise.all(first.map((c) => c.waitFor("hello db0", 10_000)));
    expect(proxy.backends.get("db0")!.sessions.size).toBe(CLIENTS);
    agents[0].set({ healthy: false });
    await Promise.all(first.map((c) => c.closed));
    const started = performance.now();
    // All at once, as pooled clients do when their connections drop together.
    const again = await Promise.all(
      Array.from({ length: CLIENTS }, () => connectClient(proxy.port)),
    );
    const answers = await Promise.all(
      again.map((c) => c.waitFor("hello", 15_000).then(() => c.received)),
    );
    const elapsed = performance.now() - started;
    expect(answers.filter((a) => !a.includes("hello db1"))).toEqual([]);
    await waitFor("all on db1", () => proxy.backends.get("db1")!.sessions.size === CLIENTS);
    expect(proxy.counters.refused).toEqual({});
    expect(proxy.counters.connectFailures).toBe(0);
    expect(proxy.counters.severed).toBe(CLIENTS);
    console.log(`${CLIENTS} clients served again by db1 in ${Math.round(elapsed)} ms`);
    for (const c of again) c.socket.destroy();
  }, 60_000);
});
