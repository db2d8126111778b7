import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Agent, type AgentOptions } from "../../src/agent/agent.ts";
import { createAgentApp } from "../../src/agent/api.ts";
import type { GaleraReadings } from "../../src/agent/rules.ts";
import type { StatusReader } from "../../src/agent/status_reader.ts";

const synced: GaleraReadings = {
  wsrep_cluster_status: "Primary",
  wsrep_ready: "ON",
  wsrep_local_state: "4",
  wsrep_local_state_comment: "Synced",
  wsrep_local_index: "1",
  wsrep_cluster_size: "3",
  wsrep_cluster_state_uuid: "c5a9ef72-e612-11f1-ab30-06a9bb16e43b",
  read_only: "OFF",
};

/** A reader whose next answer the test sets; counts how often it was asked. */
function fakeReader(answer: () => GaleraReadings) {
  const reader = {
    reads: 0,
    read: () => (reader.reads++, Promise.resolve(answer())),
    close: () => {},
  };
  return reader;
}

function makeAgent(answer: () => GaleraReadings, options: Partial<AgentOptions> = {}) {
  const reader = fakeReader(answer);
  const agent = new Agent(reader as unknown as StatusReader, {
    intervalMs: 60_000,
    maxAgeMs: 5_000,
    availableWhenDonor: false,
    availableWhenReadOnly: false,
    localHost: false,
    ...options,
  });
  return { agent, reader };
}

const auth = {
  Authorization: `Basic ${btoa("admin:lab-secret-pw")}`,
  "content-type": "application/json",
};

describe("agent HTTP", () => {
  test("GET / is clustercheck-style text with 200 or 503", async () => {
    let readings = synced;
    const { agent } = makeAgent(() => readings);
    await agent.poll();
    const app = createAgentApp(agent, null);
    const ok = await app.request("/");
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe("Galera node is synced\n");
    readings = { ...synced, wsrep_cluster_status: "non-Primary" };
    await agent.poll();
    const bad = await app.request("/");
    expect(bad.status).toBe(503);
    expect(await bad.text()).toBe("wsrep_cluster_status is non-Primary, expected Primary\n");
  });

  test("GET /api/v1/status has galera-agent's fields and the reason", async () => {
    const { agent } = makeAgent(() => synced);
    await agent.poll();
    const body = await (await createAgentApp(agent, null).request("/api/v1/status")).json();
    expect(body).toMatchObject({
      healthy: true,
      reason: "Galera node is synced",
      wsrep_local_state: 4,
      wsrep_local_state_comment: "Synced",
      wsrep_local_index: 1,
      wsrep_cluster_status: "Primary",
      wsrep_cluster_size: 3,
      wsrep_cluster_state_uuid: synced.wsrep_cluster_state_uuid,
      read_only: false,
    });
  });

  test("probes are answered from the cache: a burst never becomes a burst of queries", async () => {
    const { agent, reader } = makeAgent(() => synced);
    await agent.poll();
    const app = createAgentApp(agent, null);
    await Promise.all(Array.from({ length: 50 }, () => app.request("/")));
    expect(reader.reads).toBe(1);
  });

  test("a reading older than max-age is unhealthy", async () => {
    const { agent } = makeAgent(() => synced, { maxAgeMs: 1000 });
    await agent.poll();
    const later = Date.now() + 1500;
    expect(agent.current(later).verdict.healthy).toBe(false);
    expect(agent.current(later).verdict.reason).toMatch(
      /^last reading is \d+ms old \(limit 1000ms\)$/,
    );
  });

  test("a failed reading or a lost connection is unhealthy with its reason", async () => {
    const { agent } = makeAgent(() => {
      throw new Error("cannot connect to MariaDB at socket /x: ECONNREFUSED");
    });
    await agent.poll();
    expect(agent.current().verdict).toEqual({
      healthy: false,
      reason: "cannot connect to MariaDB at socket /x: ECONNREFUSED",
    });
    const second = makeAgent(() => synced).agent;
    await second.poll();
    second.lost("lost connection to MariaDB at socket /x: PROTOCOL_CONNECTION_LOST");
    expect(second.current().verdict.reason).toBe(
      "lost connection to MariaDB at socket /x: PROTOCOL_CONNECTION_LOST",
    );
  });

  test("a maintenance file takes the node out while it exists", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "galerad-maint-"));
    const file = path.join(dir, "maintenance");
    const { agent } = makeAgent(() => synced, { maintenanceFile: file });
    await agent.poll();
    expect(agent.current().verdict.healthy).toBe(true);
    writeFileSync(file, "disk replacement\n");
    expect(agent.current().verdict).toEqual({
      healthy: false,
      reason: "maintenance mode on the agent: disk replacement",
    });
    rmSync(dir, { recursive: true });
    expect(agent.current().verdict.healthy).toBe(true);
  });

  test("the maintenance endpoint needs credentials, a boolean and a message", async () => {
    const { agent } = makeAgent(() => synced);
    await agent.poll();
    const app = createAgentApp(agent, { user: "admin", password: "lab-secret-pw" });
    const put = (body: unknown, headers: Record<string, string> = auth) =>
      app.request("/api/v1/maintenance", { method: "PUT", headers, body: JSON.stringify(body) });
    expect(
      (await put({ enabled: true, message: "x" }, { "content-type": "application/json" })).status,
    )
      .toBe(401);
    expect((await put({ enabled: "yes" })).status).toBe(400);
    expect((await put({ enabled: true })).status).toBe(400);
    expect(await (await put({ enabled: true, message: "rolling restart" })).json()).toEqual({
      maintenance: "rolling restart",
    });
    expect((await app.request("/")).status).toBe(503);
    expect((await app.request("/api/v1/status")).status).toBe(200);
    await put({ enabled: false });
    expect((await app.request("/")).status).toBe(200);
  });

  test("controls refuse what a page of another site could send, before anything runs", async () => {
    const { agent } = makeAgent(() => synced);
    await agent.poll();
    const app = createAgentApp(agent, { user: "admin", password: "lab-secret-pw" });
    const basic = { Authorization: `Basic ${btoa("admin:lab-secret-pw")}` };
    const put = (headers: Record<string, string>, body = '{"enabled":true,"message":"x"}') =>
      app.request("http://127.0.0.1:9200/api/v1/maintenance", { method: "PUT", headers, body });
    // A form post (text/plain) with the browser's stored credentials.
    const form = await put({ ...basic, "content-type": "text/plain" });
    expect(form.status).toBe(415);
    const cross = await put({
      ...basic,
      "content-type": "application/json",
      origin: "https://evil.example",
      "sec-fetch-site": "cross-site",
    });
    expect(cross.status).toBe(403);
    expect((await cross.json()).error).toBe(
      "cross-site request refused (Sec-Fetch-Site: cross-site)",
    );
    expect(agent.maintenance()).toBeNull();
    const bodiless = await app.request("http://127.0.0.1:9200/stop_mysql", {
      method: "POST",
      headers: basic,
    });
    expect(bodiless.status).toBe(403);
    expect(form.headers.get("x-content-type-options")).toBe("nosniff");
  });

  test("controls are refused (403) when no password is configured", async () => {
    const { agent } = makeAgent(() => synced);
    const res = await createAgentApp(agent, null).request("/api/v1/maintenance");
    expect(res.status).toBe(403);
  });
});
