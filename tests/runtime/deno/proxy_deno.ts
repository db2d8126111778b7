/** The proxy and the CLI under Deno: the Deno transport carries real sessions end to end. */
import assert from "node:assert/strict";
import { connectClient, startAgent, startBackend, waitFor } from "../../../scripts/lab/fixtures.ts";
import { testProxy } from "../../helpers/test_proxy.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "proxy (deno): routes to the lowest index, fails over, severs, no failback",
  ...opts,
  fn: async () => {
    const backends = [await startBackend("db0"), await startBackend("db1")];
    const agents = [
      await startAgent({ healthy: true, index: 1 }),
      await startAgent({ healthy: true, index: 0 }),
    ];
    const proxy = testProxy(backends, agents, {
      rise: 2,
      fall: 2,
      keepAliveMs: 1000,
      shutdownTimeoutMs: 200,
    });
    try {
      await proxy.start();
      await proxy.whenReady();
      const client = await connectClient(proxy.port);
      await client.waitFor("hello db1");
      client.send("ping");
      await client.waitFor("ping");
      agents[1].set({ healthy: false });
      await client.closed;
      // db0 is served once the data plane has confirmed db1's sessions closed.
      await waitFor("db0 active", () => proxy.active === "db0");
      const next = await connectClient(proxy.port);
      await next.waitFor("hello db0");
      agents[1].set({ healthy: true });
      await waitFor(
        "db1 healthy again",
        () => proxy.backends.get("db1")!.health.status === "healthy",
      );
      assert.equal(proxy.active, "db0");
      assert.equal(next.isClosed(), false);
      next.socket.destroy();
    } finally {
      await proxy.shutdown();
      for (const x of [...backends, ...agents]) await x.close();
    }
  },
});

async function cli(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../../mod.ts", import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("cli (deno): --version and a bad flag value", async () => {
  const version = await cli(["--version"]);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  const bad = await cli(["proxy", "--backend", "db0=127.0.0.1:3306", "--timeout", "later"]);
  assert.equal(bad.code, 2);
  assert.equal(
    bad.stderr,
    'galerad: invalid --timeout (flag): "later": expected a duration like 500ms, 2s or 1m\n',
  );
});
