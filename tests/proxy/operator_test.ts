import { afterEach, describe, expect, test } from "bun:test";
import parsePrometheus from "parse-prometheus-text-format";
import { createApi } from "../../src/proxy/api.ts";
import {
  connectClient,
  startAgent,
  startBackend,
  type TestAgent,
  type TestBackend,
  waitFor,
} from "../../scripts/lab/fixtures.ts";
import { testProxy } from "../helpers/test_proxy.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function rig() {
  const backends: TestBackend[] = [];
  const agents: TestAgent[] = [];
  for (let i = 0; i < 3; i++) {
    backends.push(await startBackend(`db${i}`));
    agents.push(await startAgent({ healthy: true, index: i }));
    cleanups.push(() => backends[i].close(), () => agents[i].close());
  }
  const proxy = testProxy(backends, agents);
  await proxy.start();
  cleanups.push(() => proxy.shutdown());
  await proxy.whenReady();
  const api = createApi(proxy, { user: "a", password: "b" });
  const call = (path: string, init: RequestInit = {}) =>
    api.request(path, {
      ...init,
      headers: {
        Authorization: `Basic ${btoa("a:b")}`,
        "content-type": "application/json",
        ...(init.headers ?? {}),
      },
    });
  return { proxy, backends, agents, call };
}

type Family = {
  name: string;
  type: string;
  help: string;
  metrics: { value: string; labels?: Record<string, string> }[];
};
const metric = (families: Family[], name: string, labels: Record<string, string> = {}) =>
  Number(
    families.find((f) => f.name === name)?.metrics.find((m) =>
      Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)
    )?.value,
  );

describe("operator controls", () => {
  test("switchover moves the active node through the register and severs the old node's sessions", async () => {
    const { proxy, call } = await rig();
    const client = await connectClient(proxy.port);
    await client.waitFor("hello db0");
    const epoch = proxy.register.epoch;
    const res = await call("/v0/cluster/switchover", {
      method: "POST",
      body: JSON.stringify({ backend: "db2", message: "kernel patch on db0" }),
    });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.register).toMatchObject({
      epoch: epoch + 1,
      active: "db2",
      reason: "switchover by operator: kernel patch on db0",
    });
    await client.closed;
    const next = await connectClient(proxy.port);
    await next.waitFor("hello db2");
    next.socket.destroy();
  });

  test("switchover refuses unknown, unhealthy and already-active targets", async () => {
    const { agents, proxy, call } = await rig();
    agents[1].set({ healthy: false });
    await waitFor("db1 unhealthy", () => proxy.backends.get("db1")!.health.status === "unhealthy");
    const post = (backend: unknown) =>
      call("/v0/cluster/switchover", { method: "POST", body: JSON.stringify({ backend }) });
    expect((await post("nope")).status).toBe(409);
    const unhealthy = await post("db1");
    expect(unhealthy.status).toBe(409);
    expect((await unhealthy.json()).error).toContain("db1 is not healthy here");
    expect((await (await post("db0")).json()).error).toBe("db0 is already the active node");
    expect((await post(42)).status).toBe(400);
  });

  test("draining the active node: new sessions wait, existing ones finish, then the group moves", async () => {
    const { proxy, call } = await rig();
    const old = await connectClient(proxy.port);
    await old.waitFor("hello db0");
    const drain = call("/v0/backends/db0", {
      method: "PATCH",
      body: JSON.stringify({ maintenance: true, drainTimeout: "5s" }),
    });
    await waitFor("maintenance flag", () => proxy.backends.get("db0")!.maintenance);
    const waiting = await connectClient(proxy.port);
    await new Promise((r) => setTimeout(r, 200));
    expect(waiting.received).toBe(""); // held, not sent to db0 and not refused
    old.send("finishing");
    await old.waitFor("finishing");
    old.socket.end();
    const res = await drain;
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ name: "db0", maintenance: true, active: false });
    await waiting.waitFor("hello db1");
    expect(proxy.register.reason).toBe("switchover by operator: drain of db0");
    // Back from maintenance: a candidate again, but no failback.
    await call("/v0/backends/db0", {
      method: "PATCH",
      body: JSON.stringify({ maintenance: false }),
    });
    expect(proxy.active).toBe("db1");
    waiting.socket.destroy();
  });

  test("draining closes what is left at the deadline", async () => {
    const { proxy, call } = await rig();
    const stubborn = await connectClient(proxy.port);
    await stubborn.waitFor("hello db0");
    const res = await call("/v0/backends/db0", {
      method: "PATCH",
      body: JSON.stringify({ maintenance: true, drainTimeout: "300ms" }),
    });
    expect(res.status).toBe(200);
    await stubborn.closed;
    expect(proxy.active).toBe("db1");
  });

  test("draining a node that is not active just takes it out of the candidates", async () => {
    const { proxy, agents, call } = await rig();
    const res = await call("/v0/backends/db1", {
      method: "PATCH",
      body: JSON.stringify({ maintenance: true }),
    });
    expect(res.status).toBe(200);
    agents[0].set({ healthy: false });
    await waitFor("failover skipping the drained node", () => proxy.active === "db2");
  });

  test("bad drain requests are refused with a reason", async () => {
    const { call } = await rig();
    expect((await call("/v0/backends/nope", { method: "PATCH", body: "{}" })).status).toBe(404);
    const bad = await call("/v0/backends/db1", {
      method: "PATCH",
      body: JSON.stringify({ maintenance: "yes" }),
    });
    expect((await bad.json()).error).toBe(
      'maintenance must be true or false: current value is "yes"',
    );
    const t = await call("/v0/backends/db1", {
      method: "PATCH",
      body: JSON.stringify({ maintenance: true, drainTimeout: "soon" }),
    });
    expect(t.status).toBe(400);
  });
});

describe("/metrics", () => {
  test("parses as Prometheus text and counts what happened", async () => {
    const { proxy, agents, call } = await rig();
    const a = await connectClient(proxy.port);
    await a.waitFor("hello db0");
    a.send("12345");
    await a.waitFor("12345");
    agents[2].set({ healthy: false });
    await waitFor("db2 unhealthy", () => proxy.backends.get("db2")!.health.status === "unhealthy");
    agents[0].set({ healthy: false });
    await a.closed;
    await waitFor("failover to db1", () => proxy.active === "db1");
    agents[1].set({ healthy: false });
    await waitFor("no active node", () => proxy.active === null);
    const refused = await connectClient(proxy.port);
    await refused.closed;

    const res = await call("/metrics");
    expect(res.headers.get("content-type")).toContain("text/plain");
    const families = parsePrometheus(await res.text()) as Family[];
    for (const f of families) {
      expect(f.name).toStartWith("galerad_");
      expect(f.help.length).toBeGreaterThan(10);
    }
    expect(metric(families, "galerad_sessions_accepted_total")).toBe(1);
    expect(metric(families, "galerad_sessions_severed_total")).toBe(1);
    expect(metric(families, "galerad_sessions_refused_total", { reason: "no_active_node" })).toBe(
      1,
    );
    expect(metric(families, "galerad_bytes_total", { direction: "up" })).toBe(5);
    expect(metric(families, "galerad_bytes_total", { direction: "down" })).toBe(
      "hello db0\n".length + 5,
    );
    expect(metric(families, "galerad_active_changes_total", { reason: "initial" })).toBe(1);
    expect(metric(families, "galerad_active_changes_total", { reason: "failover" })).toBe(1);
    expect(metric(families, "galerad_register_epoch")).toBe(proxy.register.epoch);
    expect(metric(families, "galerad_data_plane_threads")).toBe(proxy.threads);
    expect(metric(families, "galerad_backend_healthy", { backend: "db0" })).toBe(0);
    expect(metric(families, "galerad_health_probe_failures_total", { backend: "db0" }))
      .toBeGreaterThanOrEqual(1);
    expect(metric(families, "galerad_health_probes_total", { backend: "db1" })).toBeGreaterThan(
      metric(families, "galerad_health_probe_failures_total", { backend: "db1" }) - 1,
    );
  });

  test("histograms: probe latency and connect time per backend, failover and sever duration", async () => {
    const { proxy, agents, call } = await rig();
    const a = await connectClient(proxy.port);
    await a.waitFor("hello db0");
    agents[0].set({ healthy: false });
    await a.closed;
    await waitFor("failover to db1", () => proxy.active === "db1");
    const b = await connectClient(proxy.port);
    await b.waitFor("hello db1");
    // (The parser drops a labelled histogram's labels, sum and count: read those from the text.)
    const series = (text: string, line: string) =>
      Number(
        new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1],
      );
    // Probes run on their own clock: wait for the third, rather than assume it already landed.
    let text = "";
    await waitFor("a third probe of db0 recorded", async () => {
      text = await (await call("/metrics")).text();
      return series(text, 'galerad_health_probe_latency_seconds_count{backend="db0"}') > 2;
    });
    const families = parsePrometheus(text) as unknown as { name: string; type: string }[];
    for (
      const name of [
        "galerad_health_probe_latency_seconds",
        "galerad_backend_connect_seconds",
        "galerad_failover_seconds",
        "galerad_sever_seconds",
      ]
    ) {
      expect(families.find((f) => f.name === name)?.type).toBe("HISTOGRAM");
    }
    expect(series(text, 'galerad_health_probe_latency_seconds_count{backend="db0"}'))
      .toBeGreaterThan(2);
    expect(series(text, 'galerad_backend_connect_seconds_count{backend="db0"}')).toBe(1);
    expect(series(text, 'galerad_backend_connect_seconds_count{backend="db1"}')).toBe(1);
    expect(series(text, "galerad_failover_seconds_count")).toBe(1);
    expect(series(text, 'galerad_failover_seconds_bucket{le="+Inf"}')).toBe(1);
    expect(series(text, "galerad_failover_seconds_sum")).toBeGreaterThan(0);
    // The one session on db0 was severed: one sever observed, from the decision to its close.
    expect(series(text, "galerad_sever_seconds_count")).toBe(1);
    expect(series(text, "galerad_sever_seconds_sum")).toBeGreaterThan(0);
    b.socket.destroy();
  });

  test("needs credentials unless public", async () => {
    const { proxy } = await rig();
    expect((await createApi(proxy, { user: "a", password: "b" }).request("/metrics")).status).toBe(
      401,
    );
    const open = createApi(proxy, { user: "a", password: "b" }, { metricsPublic: true });
    expect((await open.request("/metrics")).status).toBe(200);
    expect((await open.request("/v0/backends")).status).toBe(401);
  });
});
