import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { connectClient, startAgent, startBackend } from "../../scripts/lab/fixtures.ts";
import { TierNodes } from "../../scripts/lab/tier_nodes.ts";
import { environOf } from "../helpers/environ.ts";
import {
  clientPort,
  LOOPBACK_PORTS,
  props,
  ROOT,
  runCli,
  startDaemon,
} from "../../scripts/lab/spawn.ts";

// The compiled binary must run where no Bun, Deno or node_modules exist: it is copied to an
// empty directory and run with an empty PATH.
const dir = mkdtempSync(path.join(tmpdir(), "galerad-bin-"));
const binary = path.join(dir, "galerad");

beforeAll(() => {
  const built = path.join(mkdtempSync(path.join(tmpdir(), "galerad-build-")), "galerad");
  execFileSync("bash", [path.join(ROOT, "compile.sh"), "--out", built], { stdio: "ignore" });
  copyFileSync(built, binary);
  rmSync(path.dirname(built), { recursive: true });
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("compiled binary", () => {
  test("prints its version and rejects bad input with exit 2, with an empty PATH", async () => {
    const version = await runCli(["--version"], { command: [binary], cwd: dir, env: { PATH: "" } });
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
    const bad = await runCli(["proxy", "--backend", "nonsense"], {
      command: [binary],
      cwd: dir,
      env: { PATH: "" },
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toStartWith('galerad: invalid --backend (flag): ["nonsense"]');
  });

  test("reads no .env or bunfig.toml from the working directory", async () => {
    const cwd = mkdtempSync(path.join(tmpdir(), "galerad-cwd-"));
    try {
      writeFileSync(path.join(cwd, ".env"), "GALERAD_BACKEND=from-dotenv\n");
      writeFileSync(path.join(cwd, "preload.js"), 'require("fs").writeFileSync("ran", "")\n');
      writeFileSync(path.join(cwd, "bunfig.toml"), 'preload = ["./preload.js"]\n');
      const run = await runCli(["proxy"], { command: [binary], cwd, env: { PATH: "" } });
      expect(run.code).toBe(2);
      expect(run.stderr).toStartWith("galerad: missing --backend");
      expect(existsSync(path.join(cwd, "ran"))).toBe(false);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  test("proxies a session to the active node and fails over", async () => {
    const backends = [await startBackend("db0"), await startBackend("db1")];
    const agents = [
      await startAgent({ healthy: true, index: 0 }),
      await startAgent({ healthy: true, index: 1 }),
    ];
    const d = startDaemon([
      "proxy",
      ...backends.flatMap((
        b,
        i,
      ) => ["--backend", `${b.name}=127.0.0.1:${b.port},health=${agents[i].url}`]),
      ...LOOPBACK_PORTS,
      "--api-password",
      "lab-secret-x",
      "--interval",
      "50ms",
    ], { command: [binary], cwd: dir, env: { PATH: "" } });
    try {
      const port = await clientPort(d);
      await d.waitForLog("active db0", (l) => props(l).active === "db0");
      // It started itself again in place (the same process) with the engine's FTL tier off.
      expect(environOf(d.child.pid!).BUN_JSC_useFTLJIT).toBe("0");
      const client = await connectClient(port);
      await client.waitFor("hello db0");
      agents[0].set({ healthy: false });
      await client.closed;
      const next = await connectClient(port);
      await next.waitFor("hello db1");
      next.socket.destroy();
      expect(await d.stop()).toBe(0);
    } finally {
      await d.stop("SIGKILL");
      for (const x of [...backends, ...agents]) await x.close();
    }
  });

  test("keeps the engine settings an operator gives", async () => {
    const { d, close } = await oneNodeProxy(binary, { BUN_JSC_useFTLJIT: "1" });
    try {
      const port = await clientPort(d);
      await d.waitForLog("active db0", (l) => props(l).active === "db0");
      expect(environOf(d.child.pid!).BUN_JSC_useFTLJIT).toBe("1");
      const client = await connectClient(port);
      await client.waitFor("hello db0");
      client.socket.destroy();
    } finally {
      await close();
    }
  });

  test("a build without the data-plane thread module warns and proxies on one thread", async () => {
    const bare = path.join(dir, "galerad-bare");
    execFileSync(path.join(ROOT, "node_modules/.bin/bun"), [
      "build",
      "--compile",
      path.join(ROOT, "mod.ts"),
      "--outfile",
      bare,
    ], { stdio: "ignore", cwd: ROOT });
    const { d, close } = await oneNodeProxy(bare, {}, ["--threads", "2"]);
    try {
      await d.waitForLog(
        "a warning",
        (l) => String(l.message).includes("data-plane thread module"),
      );
      const port = await clientPort(d);
      await d.waitForLog("active db0", (l) => props(l).active === "db0");
      const client = await connectClient(port);
      await client.waitFor("hello db0");
      client.socket.destroy();
      expect(await d.stop()).toBe(0);
    } finally {
      await close();
    }
  }, 60_000);
});

/** A node, its agent, and `command` proxying to it from the bare directory, with no PATH. */
async function oneNodeProxy(command: string, env: Record<string, string>, extra: string[] = []) {
  const nodes = await TierNodes.start(["db0"]);
  const d = startDaemon([
    "proxy",
    ...nodes.backendsFor().flatMap((spec) => ["--backend", spec]),
    ...LOOPBACK_PORTS,
    "--api-password",
    "lab-secret-x",
    ...extra,
  ], { command: [command], cwd: dir, env: { PATH: "", ...env } });
  const close = async () => {
    await d.stop("SIGKILL");
    await nodes.close();
  };
  return { d, close };
}
