/**
 * Consul has no server package here: its client is tested against a small server that speaks the
 * documented agent HTTP API shapes (service register with a TTL check, check pass, deregister,
 * health-filtered service listing). DNS is tested against a real dnsmasq on a loopback port.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn } from "node:child_process";
import http from "node:http";
import type net from "node:net";
import { openRegistry } from "../../src/discover/open.ts";
import { freePort, waitFor } from "../../scripts/lab/fixtures.ts";
import { runCli, startDaemon } from "../../scripts/lab/spawn.ts";

interface Service {
  ID: string;
  Name: string;
  Address: string;
  Port: number;
  Meta: Record<string, string>;
  ttlMs: number;
  passedAt: number;
}

/** Consul's agent API as documented, in memory. */
function fakeConsul(): Promise<
  { port: number; services: Map<string, Service>; requests: string[]; close(): void }
> {
  const services = new Map<string, Service>();
  const requests: string[] = [];
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url!, "http://x");
    requests.push(`${req.method} ${url.pathname}`);
    let body = "";
    for await (const chunk of req) body += chunk;
    const json = (code: number, value: unknown) =>
      res.writeHead(code, { "content-type": "application/json" }).end(JSON.stringify(value));
    let m: RegExpExecArray | null;
    if (req.method === "PUT" && url.pathname === "/v1/agent/service/register") {
      const s = JSON.parse(body);
      if (!s.ID || !s.Name || !s.Check?.TTL) return json(400, "missing ID, Name or Check.TTL");
      services.set(s.ID, {
        ID: s.ID,
        Name: s.Name,
        Address: s.Address,
        Port: s.Port,
        Meta: s.Meta ?? {},
        ttlMs: parseInt(s.Check.TTL) * 1000,
        passedAt: 0,
      });
      return res.writeHead(200).end();
    }
    if (
      req.method === "PUT" && (m = /^\/v1\/agent\/check\/pass\/service:(.+)$/.exec(url.pathname))
    ) {
      const s = services.get(decodeURIComponent(m[1]));
      if (!s) {
        return res.writeHead(404).end(`CheckID "service:${m[1]}" does not have associated TTL`);
      }
      s.passedAt = Date.now();
      return res.writeHead(200).end();
    }
    if (
      req.method === "PUT" && (m = /^\/v1\/agent\/service\/deregister\/(.+)$/.exec(url.pathname))
    ) {
      services.delete(decodeURIComponent(m[1]));
      return res.writeHead(200).end();
    }
    if (req.method === "GET" && (m = /^\/v1\/health\/service\/(.+)$/.exec(url.pathname))) {
      const passing = url.searchParams.has("passing");
      const list = [...services.values()].filter((s) =>
        s.Name === m![1] && (!passing || Date.now() - s.passedAt < s.ttlMs)
      );
      return json(
        200,
        list.map((s) => ({
          Node: { Node: "agent-1", Address: "127.0.0.9" },
          Service: { ID: s.ID, Service: s.Name, Address: s.Address, Port: s.Port, Meta: s.Meta },
          Checks: [{
            CheckID: `service:${s.ID}`,
            Status: Date.now() - s.passedAt < s.ttlMs ? "passing" : "critical",
          }],
        })),
      );
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve) =>
    server.listen(
      0,
      "127.0.0.1",
      () =>
        resolve({
          port: (server.address() as net.AddressInfo).port,
          services,
          requests,
          close: () => server.close(),
        }),
    )
  );
}

describe("discover with Consul (documented agent API)", () => {
  test(
    "register with a TTL check, list passing instances, deregister on SIGTERM, expire after a crash",
    async () => {
      const consul = await fakeConsul();
      const url = `consul://127.0.0.1:${consul.port}`;
      try {
        const d = startDaemon([
          "discover",
          "register",
          "--registry",
          url,
          "--role",
          "proxy",
          "--name",
          "p1",
          "--address",
          "127.0.0.1:10000",
          "--api",
          "http://127.0.0.1:8080",
          "--ttl",
          "2s",
        ]);
        await d.waitForLog("registered", (l) => String(l.message).startsWith("registered"));
        expect(consul.services.get("galerad-proxy-p1")).toMatchObject({
          Name: "galerad-proxy",
          Address: "127.0.0.1",
          Port: 10000,
          Meta: { name: "p1", api: "http://127.0.0.1:8080" },
          ttlMs: 2000,
        });
        const list = await runCli(["discover", "list", "--registry", url, "--format", "json"]);
        expect(JSON.parse(list.stdout)).toEqual([{
          role: "proxy",
          name: "p1",
          address: "127.0.0.1:10000",
          api: "http://127.0.0.1:8080",
        }]);
        await new Promise((r) => setTimeout(r, 2500));
        expect(await openRegistry(url).list("proxy")).toHaveLength(1); // renewed within the TTL
        expect(await d.stop()).toBe(0);
        expect(consul.services.size).toBe(0);

        const crash = startDaemon([
          "discover",
          "register",
          "--registry",
          url,
          "--role",
          "node",
          "--name",
          "db0",
          "--address",
          "127.0.0.1:3306",
          "--ttl",
          "2s",
        ]);
        await crash.waitForLog("registered", (l) => String(l.message).startsWith("registered"));
        await crash.stop("SIGKILL");
        await waitFor(
          "the TTL check to go critical",
          async () => (await openRegistry(url).list()).length === 0,
          10_000,
        );
      } finally {
        consul.close();
      }
    },
    30_000,
  );

  test("a failing Consul gives a clear error", async () => {
    await expect(openRegistry("consul://127.0.0.1:1").list()).rejects.toThrow(
      "consul http://127.0.0.1:1/v1/health/service/galerad-node?passing=true: ECONNREFUSED",
    );
  });
});

describe("discover with DNS (dnsmasq on loopback)", () => {
  let dnsmasq: ChildProcess;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
    dnsmasq = spawn("dnsmasq", [
      "--no-daemon",
      `--port=${port}`,
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      "--no-resolv",
      "--no-hosts",
      "--conf-file=/dev/null",
      "--user=root",
      "--local=/lab/",
      "--srv-host=_galera._tcp.lab,db0.lab,13306",
      "--srv-host=_galera._tcp.lab,db1.lab,13307",
      "--host-record=db0.lab,127.0.0.1",
      "--host-record=db1.lab,127.0.0.2",
      "--host-record=nodes.lab,127.0.0.1",
      "--host-record=nodes.lab,127.0.0.2",
    ], { stdio: "ignore" });
    await waitFor(
      "dnsmasq",
      async () =>
        (await openRegistry(`dns://nodes.lab:3306?server=127.0.0.1:${port}`).list().catch(() => []))
          .length > 0,
      10_000,
    );
  });
  afterAll(() => dnsmasq?.kill());

  test("SRV records list the nodes with their ports", async () => {
    const r = await runCli([
      "discover",
      "list",
      "--registry",
      `dns+srv://_galera._tcp.lab?server=127.0.0.1:${port}`,
      "--format",
      "json",
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      { role: "node", name: "db0", address: "db0.lab:13306" },
      { role: "node", name: "db1", address: "db1.lab:13307" },
    ]);
  });

  test("A records with a port list one member per address", async () => {
    const members = await openRegistry(`dns://nodes.lab:3306?server=127.0.0.1:${port}`).list();
    expect(members.map((m) => m.address)).toEqual(["127.0.0.1:3306", "127.0.0.2:3306"]);
  });

  test("an unknown name is an empty list; DNS cannot be registered with", async () => {
    expect(await openRegistry(`dns+srv://_nothing._tcp.lab?server=127.0.0.1:${port}`).list())
      .toEqual([]);
    const r = await runCli([
      "discover",
      "register",
      "--registry",
      `dns+srv://_galera._tcp.lab?server=127.0.0.1:${port}`,
      "--role",
      "node",
      "--name",
      "x",
      "--address",
      "h:1",
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("DNS is read-only here");
  });
});
