/**
 * Seed 003's flow on a real Galera lab with a real etcd: agents register their nodes, each node's
 * entrypoint decides to bootstrap or join from the registry, and a proxy with only --discover
 * routes to the cluster.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Etcd, startEtcd } from "../helpers/etcd.ts";
import { waitFor } from "../../scripts/lab/fixtures.ts";
import { type Lab, lab, whichPort } from "../../scripts/lab/lab.ts";
import {
  clientPort,
  type Daemon,
  LOOPBACK_PORTS,
  props,
  ROOT,
  startDaemon,
} from "../../scripts/lab/spawn.ts";

const L: Lab = lab({ dir: "/tmp/galerad-e2e-disc-lab", port: 30306, galeraPort: 31567 });
const AGENT_PORT = 29500;
let etcd: Etcd;
const agents: Daemon[] = [];
const servers: ChildProcess[] = [];
const logs: string[] = ["", "", ""];

beforeAll(async () => {
  await L.run("destroy");
  await L.run("init", "3");
  etcd = await startEtcd();
}, 120_000);

afterAll(async () => {
  for (const a of agents) await a.stop();
  await L.run("destroy");
  for (const s of servers) s.kill("SIGKILL");
  await etcd?.stop();
}, 120_000);

describe("seed 003 flow with galerad discover", () => {
  test(
    "nodes register through their agents, the first by name bootstraps, the others join, a --discover proxy routes",
    async () => {
      for (let i = 0; i < 3; i++) {
        agents.push(startDaemon([
          "healthcheck",
          "--listen",
          `127.0.0.1:${AGENT_PORT + i}`,
          "--mysql-socket",
          L.socket(i),
          "--interval",
          "200ms",
          "--register",
          etcd.url,
          "--register-name",
          `node${i}`,
          "--register-address",
          `127.0.0.1:${L.port(i)}`,
          "--register-health",
          `http://127.0.0.1:${AGENT_PORT + i}`,
          "--register-ttl",
          "3s",
          "--register-galera",
          `127.0.0.1:${31567 + 10 * i}`,
        ]));
      }
      for (const a of agents) {
        await a.waitForLog("registered", (l) => String(l.message).startsWith("registered"));
      }

      // A galerad wrapper for the entrypoint, running this source.
      const bin = path.join(mkdtempSync(path.join(tmpdir(), "galerad-bin-")), "galerad");
      writeFileSync(
        bin,
        `#!/bin/sh\nexec "${process.execPath}" run "${path.join(ROOT, "mod.ts")}" "$@"\n`,
      );
      chmodSync(bin, 0o755);
      // All three entrypoints start at once: node1 and node2 wait for node0.
      for (let i = 2; i >= 0; i--) {
        const conf = path.join(L.dir, `node${i}`, "my.cnf");
        const s = spawn("bash", [
          path.join(ROOT, "scripts/galera-entrypoint.sh"),
          "--registry",
          etcd.url,
          "--name",
          `node${i}`,
          "--datadir",
          path.join(L.dir, `node${i}`, "data"),
          "--defaults-file",
          conf,
          "--wait",
          "120",
          "--",
          "mariadbd",
          `--defaults-file=${conf}`,
          "--user=mysql",
        ], { env: { ...process.env, GALERAD: bin }, stdio: ["ignore", "ignore", "pipe"] });
        s.stderr!.on("data", (c) => (logs[i] += c));
        servers.push(s);
      }
      for (let i = 0; i < 3; i++) {
        await waitFor(
          `node${i} Synced (entrypoint said: ${logs[i].slice(-300)})`,
          async () => (await L.status(i, "wsrep_local_state_comment")) === "Synced",
          180_000,
        );
      }
      expect(await L.status(0, "wsrep_cluster_size")).toBe("3");
      expect(logs[0]).toContain("starting it (first by name: node0)");
      expect(logs[1]).toContain("joining the running cluster at gcomm://");
      expect(logs[2]).toContain("joining the running cluster at gcomm://");

      await L.sql(
        0,
        "CREATE USER IF NOT EXISTS 'lab'@'%' IDENTIFIED BY 'lab'; GRANT ALL ON *.* TO 'lab'@'%'; CREATE DATABASE IF NOT EXISTS lab",
      );
      const proxy = startDaemon([
        "proxy",
        ...LOOPBACK_PORTS,
        "--api-password",
        "lab-secret-pw",
        "--discover",
        etcd.url,
        "--discover-interval",
        "500ms",
      ]);
      try {
        const port = await clientPort(proxy);
        const line = await proxy.waitForLog(
          "an active node",
          (l) => typeof props(l).active === "string" && props(l).epoch !== undefined,
          30_000,
        );
        const active = String(props(line).active);
        expect(await whichPort(port)).toBe(L.port(Number(active.replace("node", ""))));
      } finally {
        await proxy.stop();
      }
    },
    300_000,
  );
});
