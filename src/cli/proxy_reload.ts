import type { BackendSpec } from "../core/backend_spec.ts";
import type { LiveOption, ProxyOptions } from "../proxy/proxy.ts";

/** The options of `galerad proxy` that a reload compares, by their config-file key. */
export interface ReloadableConfig {
  backend: BackendSpec[];
  interval: number;
  timeout: number;
  rise: number;
  fall: number;
  connectTimeout: number;
  keepalive: number;
  maxConnecting: number;
  clientIdleTimeout: number;
  backendIdleTimeout: number;
  shutdownTimeout: number;
  shutdownDelay: number;
  catchUpTimeout: number;
  sendProxyV2: boolean;
  readerFallback: "active" | "refuse";
  [key: string]: unknown;
}

/** Keys that only take effect at a restart: ports, identity, peers, the agreement's shape. */
const RESTART_ONLY = [
  "listen",
  "apiListen",
  "healthListen",
  "readerListen",
  "name",
  "cluster",
  "peers",
  "peerListen",
  "stateFile",
  "quorum",
  "voters",
  "lease",
  "peerTimeout",
  "gossipInterval",
  "startupWait",
  "threads",
  "dataPlane",
  "discover",
  "register",
  "discoverInterval",
  "registerTtl",
  "advertiseApi",
  "peerSecret",
  "peerSecretFile",
];

/** What a new configuration changes: the live patch, the backends, and what waits for a restart. */
export function reloadPlan(
  current: ReloadableConfig,
  next: ReloadableConfig,
): {
  patch: Partial<Pick<ProxyOptions, LiveOption>>;
  backends: BackendSpec[] | null;
  restartOnly: string[];
} {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  return {
    patch: {
      intervalMs: next.interval,
      timeoutMs: next.timeout,
      rise: next.rise,
      fall: next.fall,
      connectTimeoutMs: next.connectTimeout,
      keepAliveMs: next.keepalive,
      maxConnecting: next.maxConnecting,
      clientIdleTimeoutMs: next.clientIdleTimeout,
      backendIdleTimeoutMs: next.backendIdleTimeout,
      shutdownTimeoutMs: next.shutdownTimeout,
      shutdownDelayMs: next.shutdownDelay,
      catchUpTimeoutMs: next.catchUpTimeout,
      sendProxyV2: next.sendProxyV2,
      readerFallback: next.readerFallback,
    },
    backends: same(current.backend, next.backend) ? null : next.backend,
    restartOnly: RESTART_ONLY.filter((key) => !same(current[key], next[key])),
  };
}
