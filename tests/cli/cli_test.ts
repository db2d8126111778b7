import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  connectClient,
  startAgent,
  startBackend,
  type TestAgent,
  type TestBackend,
  waitFor,
} from "../../scripts/lab/fixtures.ts";
import { clientPort, LOOPBACK_PORTS, props, runCli, startDaemon } from "../../scripts/lab/spawn.ts";
import pkg from "../../package.json" with { type: "json" };

const dir = mkdtempSync(path.join(tmpdir(), "galerad-cli-"));

function oneLine(stderr: string) {
  const lines = stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(stderr).not.toContain("    at ");
  return lines[0];
}

describe("galerad CLI", () => {
  test("--help lists the proxy subcommand and exits 0", async () => {
    const r = await runCli(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("proxy");
  });

  test("--version prints package.json's version", async () => {
    const r = await runCli(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  test("proxy --help shows every option with its GALERAD_ variable", async () => {
    const r = await runCli(["proxy", "--help"]);
    expect(r.code).toBe(0);
    for (
      const env of [
        "GALERAD_LISTEN",
        "GALERAD_BACKEND",
        "GALERAD_INTERVAL",
        "GALERAD_RISE",
        "GALERAD_SHUTDOWN_TIMEOUT",
      ]
    ) {
      expect(r.stdout).toContain(env);
    }
  });

  test("an unknown option exits 2", async () => {
    const r = await runCli(["proxy", "--nope"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--nope'");
  });

  test("an unknown subcommand exits 2", async () => {
    const r = await runCli(["frobnicate"]);
    expect(r.code).toBe(2);
  });

  test("missing --backend exits 2 with one line", async () => {
    const r = await runCli(["proxy", ...LOOPBACK_PORTS]);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe(
      "galerad: missing --backend (or --discover): give at least one NAME=HOST:PORT[,health=URL]",
    );
  });

  test("a bad flag value names the flag, the value and what was expected", async () => {
    const r = await runCli(["proxy", "--backend", "db0=127.0.0.1:3306", "--interval", "soon"]);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe(
      'galerad: invalid --interval (flag): "soon": expected a duration like 500ms, 2s or 1m',
    );
  });

  test("--threads takes auto or 1-64 and names itself otherwise", async () => {
    for (const bad of ["0", "65", "two", "1.5"]) {
      const r = await runCli(["proxy", "--backend", "db0=127.0.0.1:3306", "--threads", bad]);
      expect(r.code).toBe(2);
      expect(oneLine(r.stderr)).toBe(
        `galerad: invalid --threads (flag): "${bad}": expected auto or a whole number from 1 to 64`,
      );
    }
  });

  test("--voters names proxies of --peers, once each, and only with --quorum proxies", async () => {
    const base = [
      "proxy",
      "--backend",
      "db0=127.0.0.1:3306",
      "--name",
      "p1",
      "--peers",
      "p1=127.0.0.1:7001,p2=127.0.0.1:7002,p3=127.0.0.1:7003",
      "--peer-secret",
      "a-long-enough-secret-for-the-cli-test",
      "--check-config",
    ];
    const cases: [string[], string][] = [
      [
        ["--voters", "p1,p1", "--quorum", "proxies"],
        'galerad: invalid --voters (flag): "p1,p1": "p1" is listed twice',
      ],
      [
        ["--voters", "p1,b@d", "--quorum", "proxies"],
        `galerad: invalid --voters (flag): "p1,b@d": "b@d" is not a name: expected letters, digits, '.', '_' or '-' (at most 63)`,
      ],
      [
        ["--voters", "p1,p9", "--quorum", "proxies"],
        'galerad: invalid --voters: "p9" is not in --peers (p1, p2, p3)',
      ],
      [
        ["--voters", "p1,p2", "--quorum", "agents"],
        "galerad: invalid --voters p1,p2: only with --quorum proxies (it is agents); agents vote as the backends",
      ],
    ];
    for (const [flags, message] of cases) {
      const r = await runCli([...base, ...flags]);
      expect(r.code).toBe(2);
      expect(oneLine(r.stderr)).toBe(message);
    }
    const ok = await runCli([...base, "--voters", "p1 p2,p3", "--quorum", "proxies"]);
    expect(ok.code).toBe(0);
  });

  test("--data-plane takes auto, epoll, sockets or nft and names itself otherwise", async () => {
    const r = await runCli(["proxy", "--backend", "db0=127.0.0.1:3306", "--data-plane", "iouring"]);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe(
      'galerad: invalid --data-plane (flag): "iouring": expected auto, epoll, sockets or nft',
    );
  });

  test("--data-plane nft refuses what the kernel cannot do, in one line each", async () => {
    const base = ["proxy", "--backend", "db0=127.0.0.1:3306", "--data-plane", "nft"];
    const cases: Array<[string[], string]> = [
      [
        ["--send-proxy-v2"],
        "galerad: invalid --data-plane nft with --send-proxy-v2 (the kernel forwards packets as they are: it cannot add a PROXY header); drop that option or use --data-plane epoll",
      ],
      [
        ["--client-idle-timeout", "30s"],
        "galerad: invalid --data-plane nft with --client-idle-timeout (the kernel's flows never pass through galerad); drop that option or use --data-plane epoll",
      ],
      [
        ["--listen", "[::1]:3306"],
        "galerad: invalid --listen [::1]:3306 with --data-plane nft: expected an IPv4 address or 0.0.0.0 (the kernel path routes IPv4)",
      ],
    ];
    for (const [extra, line] of cases) {
      const r = await runCli([...base, ...extra]);
      expect(r.code).toBe(2);
      expect(oneLine(r.stderr)).toBe(line);
    }
  });

  test("a bad backend spec names --backend", async () => {
    const r = await runCli(["proxy", "--backend", "10.0.0.1:3306"]);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toContain(
      'invalid --backend (flag): ["10.0.0.1:3306"]: "10.0.0.1:3306": expected NAME=HOST:PORT',
    );
  });

  test("a listen address whose port is out of range says so", async () => {
    const r = await runCli(["proxy", "--backend", "db0=127.0.0.1:3306", "--listen", ":70000"]);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe(
      'galerad: invalid --listen (flag): ":70000": expected HOST:PORT, [IPv6]:PORT or :PORT (port 70000 is above 65535)',
    );
  });

  test("a bad environment variable names the variable", async () => {
    const r = await runCli(["proxy", "--backend", "db0=127.0.0.1:3306"], {
      env: { GALERAD_RISE: "0" },
    });
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe(
      'galerad: invalid --rise (environment GALERAD_RISE): "0": expected a whole number from 1 to 100',
    );
  });

  test("a config file with an unknown key or a bad value is refused", async () => {
    const file = path.join(dir, "bad.yaml");
    writeFileSync(file, "backends: [db0=127.0.0.1:3306]\nlisen: :3306\n");
    const r = await runCli(["proxy", "--config", file]);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe(`galerad: invalid --config "${file}": unknown key "lisen"`);
    const json = path.join(dir, "bad.json");
    writeFileSync(json, JSON.stringify({ backends: ["db0=127.0.0.1:3306"], fall: "many" }));
    const r2 = await runCli(["proxy", "--config", json]);
    expect(r2.code).toBe(2);
    expect(oneLine(r2.stderr)).toBe(
      'galerad: invalid --fall (config key "fall"): "many": expected a whole number from 1 to 100',
    );
    const missing = await runCli(["proxy", "--config", path.join(dir, "nope.yaml")]);
    expect(missing.code).toBe(2);
    expect(oneLine(missing.stderr)).toContain("cannot read it (ENOENT)");
    const twice = path.join(dir, "twice.yaml");
    writeFileSync(twice, "backends: [db0=127.0.0.1:3306]\napiListen: :8081\napi-listen: :8082\n");
    const r3 = await runCli(["proxy", "--config", twice]);
    expect(r3.code).toBe(2);
    expect(oneLine(r3.stderr)).toBe(
      `galerad: invalid --config "${twice}": "apiListen" and "api-listen" are the same key: give it once`,
    );
  });

  test("weak passwords and peer secrets are refused, saying what is expected; a readable secret file is warned", async () => {
    const weak = await runCli(["proxy", "--backend", "db0=127.0.0.1:1", "--api-password", "x"]);
    expect(weak.code).toBe(2);
    expect(oneLine(weak.stderr)).toBe(
      "galerad: invalid --api-password: the password is too weak: it has 1 characters: at least 8 are expected",
    );
    const agent = await runCli(["healthcheck", "--api-password", "pwpwpwpwpw"]);
    expect(agent.code).toBe(2);
    expect(oneLine(agent.stderr)).toContain("it has only 2 distinct characters");
    const secret = await runCli([
      "proxy",
      "--backend",
      "db0=127.0.0.1:1",
      "--api-password",
      "lab-secret-x",
      "--peers",
      "a=127.0.0.1:1,b=127.0.0.1:2",
      "--name",
      "a",
      "--peer-secret",
      "a".repeat(16),
    ]);
    expect(secret.code).toBe(2);
    expect(oneLine(secret.stderr)).toBe(
      "galerad: invalid --peer-secret: secret 1 of 1 is too weak: it has only 1 distinct characters: at least 8 are expected",
    );
    const dir = mkdtempSync(path.join(tmpdir(), "galerad-secret-"));
    const file = path.join(dir, "api-password");
    writeFileSync(file, "weak\n", { mode: 0o644 });
    const fromFile = await runCli([
      "proxy",
      "--backend",
      "db0=127.0.0.1:1",
      "--api-password-file",
      file,
    ]);
    expect(fromFile.code).toBe(2);
    expect(fromFile.stderr).toContain(`--api-password-file ${file} is readable by every user`);
    expect(oneLine(fromFile.stderr.split("\n").filter((l) => l.startsWith("galerad:")).join("")))
      .toBe(
        "galerad: invalid --api-password-file: the password is too weak: it has 4 characters: at least 8 are expected",
      );
  });

  test("a port already in use exits 1 with one line", async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    const r = await runCli([
      "proxy",
      "--backend",
      "db0=127.0.0.1:1",
      "--listen",
      `127.0.0.1:${port}`,
      "--log-level",
      "error",
    ]);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toBe(
      `galerad: cannot listen for clients on 127.0.0.1:${port} (--listen): address already in use`,
    );
    for (const [flag, what] of [["--reader-listen", "readers"], ["--api-listen", "the API"]]) {
      const taken = await runCli([
        "proxy",
        "--backend",
        "db0=127.0.0.1:1",
        ...LOOPBACK_PORTS,
        flag,
        `127.0.0.1:${port}`,
        "--log-level",
        "error",
      ]);
      expect(taken.code).toBe(1);
      expect(oneLine(taken.stderr)).toBe(
        `galerad: cannot listen for ${what} on 127.0.0.1:${port} (${flag}): address already in use`,
      );
    }
    blocker.close();
  });
});

describe("galerad proxy as a process", () => {
  let backends: TestBackend[];
  let agents: TestAgent[];
  beforeAll(async () => {
    backends = [await startBackend("db0"), await startBackend("db1")];
    agents = [
      await startAgent({ healthy: true, index: 0 }),
      await startAgent({ healthy: true, index: 1 }),
    ];
  });
  afterAll(async () => {
    for (const x of [...backends, ...agents]) await x.close();
  });

  test("reads a config file, routes, fails over, serves the API and drains on SIGTERM", async () => {
    const config = path.join(dir, "proxy.yaml");
    writeFileSync(
      config,
      [
        "backends:",
        ...backends.map((b, i) => `  - db${i}=127.0.0.1:${b.port},health=${agents[i].url}`),
        "interval: 50ms",
        "api-user: ops",
        "shutdown-timeout: 5s",
      ].join("\n"),
    );
    const pw = path.join(dir, "lab-secret-pw");
    writeFileSync(pw, "hunter2-hunter\n");
    const d = startDaemon([
      "proxy",
      "--config",
      config,
      ...LOOPBACK_PORTS,
      "--api-password-file",
      pw,
    ]);
    try {
      const port = await clientPort(d);
      const apiLine = props(
        await d.waitForLog("API port", (l) => String(l.message).startsWith("API on")),
      );
      await d.waitForLog("first active node", (l) => props(l).active === "db0");
      const client = await connectClient(port);
      await client.waitFor("hello db0");
      const api = `http://127.0.0.1:${apiLine.port}`;
      const health = `http://127.0.0.1:${apiLine.healthPort}`;
      expect((await fetch(`${api}/v0/backends`)).status).toBe(401);
      const list = await (await fetch(`${api}/v0/backends`, {
        headers: { Authorization: `Basic ${btoa("ops:hunter2-hunter")}` },
      })).json();
      expect(list.map((b: { name: string; active: boolean }) => [b.name, b.active])).toEqual([[
        "db0",
        true,
      ], ["db1", false]]);
      expect((await fetch(`${health}/ready`)).status).toBe(200);

      agents[0].set({ healthy: false });
      await client.closed;
      const line = await d.waitForLog("failover", (l) => props(l).active === "db1");
      expect(String(props(line).reason)).toContain("db0 is down here");
      const second = await connectClient(port);
      await second.waitFor("hello db1");

      d.child.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 300));
      expect(second.isClosed()).toBe(false); // draining: the open session may finish
      second.socket.end();
      expect(await d.exited).toBe(0);
    } finally {
      await d.stop("SIGKILL");
      agents[0].set({ healthy: true });
    }
  });

  test(
    "SIGHUP reloads the config file: backends, timers, credentials; a bad file changes nothing",
    async () => {
      const extra = await startBackend("db2");
      const extraAgent = await startAgent({ healthy: true, index: 2 });
      const spec = (i: number) =>
        i === 2
          ? `db2=127.0.0.1:${extra.port},health=${extraAgent.url}`
          : `db${i}=127.0.0.1:${backends[i].port},health=${agents[i].url}`;
      const config = path.join(dir, "reload.yaml");
      const pwFile = path.join(dir, "reload-pw");
      writeFileSync(pwFile, "first-password\n", { mode: 0o600 });
      const write = (lines: string[]) => writeFileSync(config, lines.join("\n") + "\n");
      write(["backends:", `  - ${spec(0)}`, `  - ${spec(1)}`, "interval: 50ms"]);
      const d = startDaemon([
        "proxy",
        "--config",
        config,
        ...LOOPBACK_PORTS,
        "--api-password-file",
        pwFile,
      ]);
      try {
        const port = await clientPort(d);
        const apiLine = props(
          await d.waitForLog("API port", (l) => String(l.message).startsWith("API on")),
        );
        const api = `http://127.0.0.1:${apiLine.port}`;
        const get = (path: string, password: string) =>
          fetch(`${api}${path}`, {
            headers: { Authorization: `Basic ${btoa(`admin:${password}`)}` },
          });
        await d.waitForLog("first active node", (l) => props(l).active === "db0");
        const client = await connectClient(port);
        await client.waitFor("hello db0");
        // db1 out, db2 in, a new interval and a new password; the session on db0 is untouched.
        write(["backends:", `  - ${spec(0)}`, `  - ${spec(2)}`, "interval: 80ms", "rise: 3"]);
        writeFileSync(pwFile, "second-password\n");
        d.child.kill("SIGHUP");
        await d.waitForLog(
          "reloaded",
          (l) => String(l.message).startsWith("configuration reloaded"),
        );
        const cluster = await (await get("/v0/cluster", "second-password")).json();
        expect(cluster.config).toMatchObject({ generation: 2, lastReloadError: null });
        expect((await get("/v0/cluster", "first-password")).status).toBe(401);
        const names = (await (await get("/v0/backends", "second-password")).json()).map((
          b: { name: string },
        ) => b.name);
        expect(names).toEqual(["db0", "db2"]);
        expect(client.isClosed()).toBe(false);
        // A bad file: one line naming the field, the running configuration stays.
        write(["backends:", `  - ${spec(0)}`, "fall: many"]);
        d.child.kill("SIGHUP");
        const refused = await d.waitForLog(
          "refused",
          (l) => String(l.message).startsWith("reload refused"),
        );
        expect(String(refused.message)).toContain(
          'invalid --fall (config key "fall"): "many": expected a whole number from 1 to 100',
        );
        const after = await (await get("/v0/cluster", "second-password")).json();
        expect(after.config.generation).toBe(2);
        expect(after.config.lastReloadError.message).toContain("invalid --fall");
        expect((await (await get("/v0/backends", "second-password")).json()).length).toBe(2);
        expect(client.isClosed()).toBe(false);
        client.socket.destroy();
        // --check-config: 0 for a good file, 2 naming the field for a bad one.
        const bad = await runCli(["proxy", "--config", config, "--check-config"]);
        expect(bad.code).toBe(2);
        expect(oneLine(bad.stderr)).toContain('invalid --fall (config key "fall")');
        write(["backends:", `  - ${spec(0)}`]);
        const good = await runCli([
          "proxy",
          "--config",
          config,
          "--check-config",
          "--api-password",
          "lab-secret-x",
        ]);
        expect({ code: good.code, out: good.stdout.trim() }).toEqual({
          code: 0,
          out: "galerad: the configuration is valid: 1 backends, no peers",
        });
      } finally {
        expect(await d.stop()).toBe(0);
        await extra.close();
        await extraAgent.close();
      }
    },
    30_000,
  );

  test("a SIGTERM while the proxy is still starting is a clean stop (exit 0)", async () => {
    const spec = backends.map((b, i) => `db${i}=127.0.0.1:${b.port},health=${agents[i].url}`);
    const d = startDaemon([
      "proxy",
      ...LOOPBACK_PORTS,
      "--api-password",
      "lab-secret-x",
      "--backend",
      spec[0],
    ]);
    try {
      // The client port is bound before the API: signal in between.
      await clientPort(d);
      d.child.kill("SIGTERM");
      expect(await d.exited).toBe(0);
      expect(d.logs().some((l) => l.message === "stopped")).toBe(true);
    } finally {
      await d.stop("SIGKILL");
    }
  });

  test("takes backends from GALERAD_BACKEND, separated by whitespace", async () => {
    const spec = backends.map((b, i) => `db${i}=127.0.0.1:${b.port},health=${agents[i].url}`).join(
      " ",
    );
    const d = startDaemon(["proxy", ...LOOPBACK_PORTS, "--api-password", "lab-secret-x"], {
      env: { GALERAD_BACKEND: spec },
    });
    try {
      await d.waitForLog("first active node", (l) => props(l).active === "db0");
      await waitFor(
        "two backends probed",
        () => d.logs().filter((l) => String(l.message).includes("is healthy")).length === 2,
      );
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });
});

describe("missing required options", () => {
  test("name the flag and its environment variable", async () => {
    const list = await runCli(["discover", "list"]);
    expect(list.code).toBe(2);
    expect(list.stderr.trim()).toBe(
      "galerad: missing --registry (or GALERAD_REGISTRY): expected a registry URL",
    );
    const boot = await runCli(["bootstrap", "--api-password", "lab-secret-x"]);
    expect(boot.code).toBe(2);
    expect(boot.stderr.trim()).toBe(
      "galerad: missing --agent (or GALERAD_AGENT): give at least one --agent [NAME=]URL",
    );
  });
});
