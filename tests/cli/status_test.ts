import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { serveHttp } from "#runtime";
import { createApi } from "../../src/proxy/api.ts";
import type { Proxy } from "../../src/proxy/proxy.ts";
import type { HttpServer } from "../../src/runtime/types.ts";
import {
  startAgent,
  startBackend,
  type TestAgent,
  type TestBackend,
} from "../../scripts/lab/fixtures.ts";
import { runCli } from "../../scripts/lab/spawn.ts";
import { testProxy } from "../helpers/test_proxy.ts";

let proxy: Proxy;
let server: HttpServer;
let backends: TestBackend[];
let agents: TestAgent[];

beforeAll(async () => {
  backends = [await startBackend("db0"), await startBackend("db1")];
  agents = [
    await startAgent({ healthy: true, index: 0 }),
    await startAgent({ healthy: false, index: 1 }),
  ];
  proxy = testProxy(backends, agents, { name: "edge-1" });
  await proxy.start();
  await proxy.whenReady();
  server = await serveHttp(
    { host: "127.0.0.1", port: 0 },
    createApi(proxy, { user: "admin", password: "lab-secret-pw" }).fetch,
  );
});

afterAll(async () => {
  await server.close();
  await proxy.shutdown();
  for (const x of [...backends, ...agents]) await x.close();
});

describe("galerad status", () => {
  test("prints the proxy's view as a table", async () => {
    const r = await runCli([
      "status",
      "--api",
      `http://127.0.0.1:${server.port}`,
      "--api-password",
      "lab-secret-pw",
      "--format",
      "table",
    ]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toStartWith("proxy edge-1: routing; routes to db0");
    expect(lines[1]).toStartWith("register: epoch 1, active db0, by edge-1");
    expect(lines[3]).toMatch(
      /^BACKEND\s+ADDRESS\s+HEALTH\s+ACTIVE\s+SESSIONS\s+INDEX\s+STATE\s+REASON$/,
    );
    expect(lines[4]).toMatch(
      /^db0\s+127\.0\.0\.1:\d+\s+healthy\s+\*\s+0\s+0\s+Synced\s+agent reports healthy$/,
    );
    expect(lines[5]).toMatch(/^db1\s+127\.0\.0\.1:\d+\s+unhealthy\s+0\s+1\s+Joining/);
  });

  test("prints JSON when asked (the default off a terminal)", async () => {
    const r = await runCli([
      "status",
      "--api",
      `http://127.0.0.1:${server.port}`,
      "--api-password",
      "lab-secret-pw",
    ]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.cluster.activeBackend).toBe("db0");
    expect(out.backends).toHaveLength(2);
  });

  test("wrong credentials and an unreachable API exit 1 with one line", async () => {
    const bad = await runCli([
      "status",
      "--api",
      `http://127.0.0.1:${server.port}`,
      "--api-password",
      "nope",
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toBe(
      `galerad: http://127.0.0.1:${server.port} refused the credentials (401)`,
    );
    const gone = await runCli([
      "status",
      "--api",
      "http://127.0.0.1:1",
      "--api-password",
      "lab-secret-pw",
    ]);
    expect(gone.code).toBe(1);
    expect(gone.stderr.trim().split("\n")).toHaveLength(1);
    expect(gone.stderr).toContain("cannot reach http://127.0.0.1:1");
  });
});
