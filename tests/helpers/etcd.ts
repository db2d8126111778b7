/** A throwaway etcd (Debian's etcd-server) on loopback for the discovery tests. */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort, waitFor } from "../../scripts/lab/fixtures.ts";

export interface Etcd {
  url: string;
  endpoint: string;
  stop(): Promise<void>;
}

export async function startEtcd(): Promise<Etcd> {
  const dir = mkdtempSync(path.join(tmpdir(), "galerad-etcd-"));
  const client = await freePort();
  const peer = await freePort();
  const child: ChildProcess = spawn("etcd", [
    "--name",
    "t",
    "--data-dir",
    path.join(dir, "data"),
    "--listen-client-urls",
    `http://127.0.0.1:${client}`,
    "--advertise-client-urls",
    `http://127.0.0.1:${client}`,
    "--listen-peer-urls",
    `http://127.0.0.1:${peer}`,
    "--initial-advertise-peer-urls",
    `http://127.0.0.1:${peer}`,
    "--initial-cluster",
    `t=http://127.0.0.1:${peer}`,
    "--log-level",
    "error",
  ], { stdio: "ignore" });
  const endpoint = `http://127.0.0.1:${client}`;
  await waitFor(
    "etcd to answer",
    async () => (await fetch(`${endpoint}/health`).catch(() => null))?.ok,
    20_000,
  );
  return {
    url: `etcd://127.0.0.1:${client}/galerad`,
    endpoint,
    stop: async () => {
      child.kill("SIGKILL");
      await new Promise((r) => child.once("close", r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
