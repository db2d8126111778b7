/** Discovery against a real etcd (Debian's etcd-server) on loopback. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { openRegistry } from "../../src/discover/open.ts";
import { type Etcd, startEtcd } from "../helpers/etcd.ts";
import {
  connectClient,
  startAgent,
  startBackend,
  type TestAgent,
  type TestBackend,
  waitFor,
} from "../../scripts/lab/fixtures.ts";
import {
  clientPort,
  type Daemon,
  LOOPBACK_PORTS,
  props,
  runCli,
  startDaemon,
} from "../../scripts/lab/spawn.ts";

let etcd: Etcd;
beforeAll(async () => {
  etcd = await startEtcd();
}, 30_000);
afterAll(async () => await etcd?.stop());

const list = async (role?: string) => {
  const r = await runCli([
    "discover",
    "list",
    "--registry",
    etcd.url,
    "--format",
    "json",
    ...(role ? ["--role", role] : []),
  ]);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as { name: string; role: string; address: string; health?: string }[];
};

function register(name: string, address: string, extra: string[] = []): Daemon {
  return startDaemon([
    "discover",
    "register",
    "--registry",
    etcd.url,
    "--role",
    "node",
    "--name",
    name,
    "--address",
    address,
    "--ttl",
    "2s",
    ...extra,
  ]);
}

describe("discover with etcd", () => {
  test("register, list, deregister on SIGTERM", async () => {
    const d = register("db0", "127.0.0.1:3306", ["--health", "http://127.0.0.1:9200"]);
    await d.waitForLog("registered", (l) => String(l.message).startsWith("registered"));
    expect(await list("node")).toEqual([{
      role: "node",
      name: "db0",
      address: "127.0.0.1:3306",
      health: "http://127.0.0.1:9200",
    }]);
    const gcomm = await runCli(["discover", "list", "--registry", etcd.url, "--format", "gcomm"]);
    expect(gcomm.stdout).toBe("gcomm://127.0.0.1\n");
    expect(await d.stop()).toBe(0);
    expect(await list()).toEqual([]);
  }, 30_000);

  test("a crashed member's entry expires with its TTL", async () => {
    const d = register("db9", "127.0.0.1:3399");
    await d.waitForLog("registered", (l) => String(l.message).startsWith("registered"));
    expect((await list()).map((m) => m.name)).toEqual(["db9"]);
    await d.stop("SIGKILL");
    await waitFor("the lease to expire", async () => (await list()).length === 0, 10_000);
  }, 30_000);

  test("registration outlives its TTL while the process runs", async () => {
    const d = register("db1", "127.0.0.1:3307");
    try {
      await d.waitForLog("registered", (l) => String(l.message).startsWith("registered"));
      await new Promise((r) => setTimeout(r, 4500));
      expect((await list()).map((m) => m.name)).toEqual(["db1"]);
    } finally {
      await d.stop();
    }
  }, 30_000);

  test(
    "watch --exec runs the command on membership changes, with the members in its environment",
    async () => {
      const dir = mkdtempSync(path.join(tmpdir(), "galerad-watch-"));
      const out = path.join(dir, "members");
      const w = startDaemon([
        "discover",
        "watch",
        "--registry",
        etcd.url,
        "--role",
        "node",
        "--interval",
        "200ms",
        "--debounce",
        "300ms",
        "--galera-port",
        "4567",
        "--exec",
        `sh -c 'printf "%s|%s\\n" "$GALERAD_GCOMM" "$(echo $GALERAD_MEMBERS)" >> ${out}'`,
      ]);
      const a = register("db0", "127.0.0.1:3306");
      const b = register("db1", "127.0.0.2:3306");
      try {
        await waitFor("both members seen by the command", () => {
          try {
            return readFileSync(out, "utf8").includes(
              "gcomm://127.0.0.1:4567,127.0.0.2:4567|node db0 127.0.0.1:3306 node db1 127.0.0.2:3306",
            );
          } catch {
            return false;
          }
        }, 10_000);
        await b.stop();
        await waitFor(
          "the departure seen",
          () =>
            readFileSync(out, "utf8").trim().split("\n").at(-1) ===
              "gcomm://127.0.0.1:4567|node db0 127.0.0.1:3306",
          10_000,
        );
      } finally {
        await a.stop();
        await b.stop();
        await w.stop();
      }
    },
    30_000,
  );

  test("the registry's client reports an unreachable etcd clearly", async () => {
    await expect(openRegistry("etcd://127.0.0.1:1/galerad").list()).rejects.toThrow(
      "etcd http://127.0.0.1:1/v3/kv/range: ECONNREFUSED",
    );
    const r = await runCli(["discover", "list", "--registry", "etcd://127.0.0.1:1/x"]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe("galerad: etcd http://127.0.0.1:1/v3/kv/range: ECONNREFUSED");
  });
});

describe("galerad proxy --discover (etcd)", () => {
  let backends: TestBackend[];
  let agents: TestAgent[];
  beforeAll(async () => {
    backends = [await startBackend("db0"), await startBackend("db1"), await startBackend("db2")];
    agents = [
      await startAgent({ healthy: true, index: 0 }),
      await startAgent({ healthy: true, index: 1 }),
      await startAgent({ healthy: true, index: 2 }),
    ];
  });
  afterAll(async () => {
    for (const x of [...backends, ...agents]) await x.close();
  });

  test(
    "the first choice waits for the registry's first read and every listed node's first probe",
    async () => {
      // db0 has the lowest index but the slowest agent: a choice on the first probe back is db1.
      agents[0].set({ delayMs: 700 });
      const regs = [0, 1, 2].map((i) =>
        register(`db${i}`, `127.0.0.1:${backends[i].port}`, ["--health", agents[i].url])
      );
      for (const r of regs) {
        await r.waitForLog("registered", (l) => String(l.message).startsWith("registered"));
      }
      const proxy = startDaemon([
        "proxy",
        ...LOOPBACK_PORTS,
        "--api-password",
        "lab-secret-pw",
        "--discover",
        etcd.url,
        "--discover-interval",
        "200ms",
        "--interval",
        "50ms",
        "--timeout",
        "2s",
      ]);
      try {
        const line = await proxy.waitForLog("an active node", (l) => props(l).active !== undefined);
        expect(props(line).active).toBe("db0");
      } finally {
        agents[0].set({ delayMs: 0 });
        await proxy.stop();
        for (const r of regs) await r.stop();
      }
    },
    30_000,
  );

  test(
    "takes its backends from the registry and follows it; the healthy active node survives a blink",
    async () => {
      const regs = [0, 1].map((i) =>
        register(`db${i}`, `127.0.0.1:${backends[i].port}`, ["--health", agents[i].url])
      );
      // Both entries exist before the proxy's first read: were db1 alone at first, it would
      // rightly become (and stay) the active node.
      for (const r of regs) {
        await r.waitForLog("registered", (l) => String(l.message).startsWith("registered"));
      }
      const proxy = startDaemon([
        "proxy",
        ...LOOPBACK_PORTS,
        "--api-password",
        "lab-secret-pw",
        "--discover",
        etcd.url,
        "--discover-interval",
        "200ms",
        "--interval",
        "50ms",
      ]);
      try {
        const port = await clientPort(proxy);
        await proxy.waitForLog(
          "db0 active",
          (l) => props(l).active === "db0" && props(l).epoch !== undefined,
        );
        const c = await connectClient(port);
        await c.waitFor("hello db0");
        // A new node becomes a candidate.
        regs.push(register("db2", `127.0.0.1:${backends[2].port}`, ["--health", agents[2].url]));
        await proxy.waitForLog(
          "db2 added",
          (l) => props(l).backend === "db2" && String(l.message).includes("added"),
        );
        // A removed non-active node is dropped.
        await regs[1].stop();
        await proxy.waitForLog(
          "db1 removed",
          (l) => props(l).backend === "db1" && String(l.message).includes("removed"),
        );
        // The active node leaving the registry (a blink) is kept while healthy.
        await regs[0].stop();
        await proxy.waitForLog(
          "db0 kept",
          (l) => props(l).backend === "db0" && String(l.message).startsWith("kept"),
        );
        expect(c.isClosed()).toBe(false);
        // Registry down: the last known set stands, logged.
        await etcd.stop();
        await proxy.waitForLog(
          "registry unreachable",
          (l) => String(l.message).startsWith("cannot read the registry"),
          10_000,
        );
        const again = await connectClient(port);
        await again.waitFor("hello db0");
        again.socket.destroy();
        c.socket.destroy();
      } finally {
        await proxy.stop();
        for (const r of regs) await r.stop();
        etcd = await startEtcd();
      }
    },
    60_000,
  );
});
