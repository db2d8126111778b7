import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createApi, createHealthApp } from "../../src/proxy/api.ts";
import type { Proxy } from "../../src/proxy/proxy.ts";
import {
  connectClient,
  startAgent,
  startBackend,
  type TestAgent,
  type TestBackend,
  waitFor,
} from "../../scripts/lab/fixtures.ts";
import { testProxy } from "../helpers/test_proxy.ts";

let proxy: Proxy;
let backends: TestBackend[];
let agents: TestAgent[];
const auth = {
  Authorization: `Basic ${btoa("admin:s3cret")}`,
  "content-type": "application/json",
};

beforeAll(async () => {
  backends = [await startBackend("db0"), await startBackend("db1")];
  agents = [
    await startAgent({ healthy: true, index: 1 }),
    await startAgent({ healthy: true, index: 0 }),
  ];
  proxy = testProxy(backends, agents);
  await proxy.start();
  await proxy.whenReady();
});

afterAll(async () => {
  await proxy.shutdown();
  for (const x of [...backends, ...agents]) await x.close();
});

describe("API", () => {
  const api = () => createApi(proxy, { user: "admin", password: "s3cret" });

  test("refuses requests without or with wrong credentials", async () => {
    expect((await api().request("/v0/backends")).status).toBe(401);
    const wrong = await api().request("/v0/backends", {
      headers: { Authorization: `Basic ${btoa("admin:nope")}` },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toContain("Basic");
  });

  test("GET /v0/backends has Switchboard's fields plus wsrepLocalIndex and lastChange", async () => {
    const client = await connectClient(proxy.port);
    await client.waitFor("hello db1");
    const res = await api().request("/v0/backends", { headers: auth });
    expect(res.status).toBe(200);
    const list = await res.json();
    expect(list).toHaveLength(2);
    const db1 = list.find((b: { name: string }) => b.name === "db1");
    expect(db1).toMatchObject({
      name: "db1",
      host: "127.0.0.1",
      port: backends[1].port,
      healthy: true,
      active: true,
      currentSessionCount: 1,
      trafficEnabled: true,
      wsrepLocalIndex: 0,
    });
    expect(typeof db1.lastChange).toBe("string");
    expect(list.find((b: { name: string }) => b.name === "db0")).toMatchObject({
      active: false,
      currentSessionCount: 0,
    });
    client.socket.destroy();
  });

  test("a body larger than 64 KiB is refused with 413 before it is read", async () => {
    const res = await api().request("/v0/cluster", {
      method: "PATCH",
      headers: { ...auth, "content-length": String(200 * 1024) },
      body: JSON.stringify({ trafficEnabled: false, message: "x".repeat(200 * 1024 - 40) }),
    });
    expect(res.status).toBe(413);
    expect((await res.json()).error).toBe("request body is larger than 65536 bytes");
    expect(proxy.traffic.enabled).toBe(true);
  });

  test("PATCH /v0/cluster needs a message to disable traffic", async () => {
    const res = await api().request("/v0/cluster?trafficEnabled=false", {
      method: "PATCH",
      headers: auth,
    });
    expect(res.status).toBe(400);
    expect((await res.json()).error).toContain("message is required");
    const bad = await api().request("/v0/cluster", {
      method: "PATCH",
      headers: auth,
      body: JSON.stringify({ trafficEnabled: "maybe" }),
    });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toContain(
      'trafficEnabled must be true or false: current value is "maybe"',
    );
    expect(proxy.traffic.enabled).toBe(true);
  });

  test("PATCH /v0/cluster disables (severing sessions) and enables traffic", async () => {
    const client = await connectClient(proxy.port);
    await client.waitFor("hello db1");
    const off = await api().request("/v0/cluster?trafficEnabled=false&message=upgrading", {
      method: "PATCH",
      headers: auth,
    });
    expect(off.status).toBe(200);
    expect(await off.json()).toMatchObject({ trafficEnabled: false, message: "upgrading" });
    await client.closed;
    const ready = await createHealthApp(proxy).request("/ready");
    expect(ready.status).toBe(503);
    expect(await ready.text()).toContain("traffic disabled");
    const get = await (await api().request("/v0/cluster", { headers: auth })).json();
    expect(get).toMatchObject({
      trafficEnabled: false,
      message: "upgrading",
      activeBackend: "db1",
    });
    const on = await api().request("/v0/cluster", {
      method: "PATCH",
      headers: auth,
      body: JSON.stringify({ trafficEnabled: true }),
    });
    expect(await on.json()).toMatchObject({ trafficEnabled: true });
  });
});

describe("health port", () => {
  test("answers 200 on any path, and /ready follows the active node", async () => {
    const app = createHealthApp(proxy);
    expect((await app.request("/")).status).toBe(200);
    expect((await app.request("/anything")).status).toBe(200);
    expect((await app.request("/ready")).status).toBe(200);
    agents[0].set({ healthy: false });
    agents[1].set({ healthy: false });
    await waitFor("no active node", () => proxy.active === null);
    expect((await app.request("/")).status).toBe(200);
    const ready = await app.request("/ready");
    expect(ready.status).toBe(503);
    expect(await ready.text()).toBe("not ready: no active node\n");
  });
});
