/**
 * systemd's notify protocol against a real Unix datagram socket (a python3 receiver: neither
 * runtime reads Unix datagrams): READY once routing, RELOADING/READY around SIGHUP, WATCHDOG at
 * half of $WATCHDOG_USEC, STOPPING on SIGTERM.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  startAgent,
  startBackend,
  type TestAgent,
  type TestBackend,
  waitFor,
} from "../../scripts/lab/fixtures.ts";
import { LOOPBACK_PORTS, props, startDaemon } from "../../scripts/lab/spawn.ts";
import { environOf } from "../helpers/environ.ts";

let backend: TestBackend;
let agent: TestAgent;
beforeAll(async () => {
  backend = await startBackend("db0");
  agent = await startAgent({ healthy: true, index: 0 });
});
afterAll(async () => {
  await backend.close();
  await agent.close();
});

function receiver(
  socketPath: string,
): { child: ChildProcess; bound: () => boolean; seen: () => string[] } {
  let out = "";
  const child = spawn("python3", [
    "-u",
    "-c",
    "import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint('bound',flush=True)\nwhile True:\n  print(s.recv(4096).decode().replace('\\n','|'),flush=True)",
    socketPath,
  ]);
  child.stdout!.on("data", (c) => (out += c));
  return {
    child,
    bound: () => out.startsWith("bound"),
    seen: () => out.split("\n").filter((l) => l !== "" && l !== "bound"),
  };
}

describe("sd_notify", () => {
  test("READY once routing, RELOADING then READY around SIGHUP, WATCHDOG, STOPPING", async () => {
    const socketPath = path.join(mkdtempSync(path.join(tmpdir(), "galerad-notify-")), "notify");
    const r = receiver(socketPath);
    try {
      await waitFor(
        "the receiver bound",
        () => r.child.stdout!.readable && r.seen !== undefined,
        5000,
      );
      await new Promise((res) => setTimeout(res, 300));
      const d = startDaemon([
        "proxy",
        ...LOOPBACK_PORTS,
        "--api-password",
        "lab-secret-x",
        "--backend",
        `db0=127.0.0.1:${backend.port},health=${agent.url}`,
        "--interval",
        "50ms",
      ], { env: { NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: "400000" } });
      try {
        await d.waitForLog("active", (l) => props(l).active === "db0");
        await waitFor(
          "READY",
          () => r.seen().some((l) => l.startsWith("READY=1|STATUS=routing to db0")),
        );
        // READY came from the process systemd started, after it started itself again in place.
        expect(environOf(d.child.pid!).BUN_JSC_useFTLJIT).toBe("0");
        await waitFor(
          "WATCHDOG",
          () => r.seen().filter((l) => l === "WATCHDOG=1").length >= 2,
          5000,
        );
        d.child.kill("SIGHUP");
        await waitFor("RELOADING then READY", () => {
          const s = r.seen().filter((l) => l !== "WATCHDOG=1");
          const i = s.indexOf("RELOADING=1");
          return i > 0 && s.slice(i + 1).includes("READY=1");
        }, 5000);
      } finally {
        expect(await d.stop()).toBe(0);
      }
      await waitFor("STOPPING", () => r.seen().includes("STOPPING=1"), 5000);
    } finally {
      r.child.kill("SIGKILL");
    }
  }, 30_000);
});
