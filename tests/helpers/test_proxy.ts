import { parseBackendSpec } from "../../src/core/backend_spec.ts";
import { Proxy, type ProxyOptions } from "../../src/proxy/proxy.ts";
import type { TestAgent, TestBackend } from "../../scripts/lab/fixtures.ts";

/**
 * A Proxy on an ephemeral loopback port in front of test backends, each watched through the
 * agent at the same index, with fast timers; `overrides` changes any option.
 */
export function testProxy(
  backends: TestBackend[],
  agents: TestAgent[],
  overrides: Partial<ProxyOptions> = {},
): Proxy {
  return new Proxy({
    listen: { host: "127.0.0.1", port: 0 },
    backends: backends.map((b, i) =>
      parseBackendSpec(`${b.name}=127.0.0.1:${b.port},health=${agents[i].url}`)
    ),
    intervalMs: 50,
    timeoutMs: 200,
    rise: 1,
    fall: 1,
    connectTimeoutMs: 1000,
    keepAliveMs: 0,
    shutdownTimeoutMs: 100,
    ...overrides,
  });
}
