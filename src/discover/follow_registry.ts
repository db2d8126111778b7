import { getLogger } from "@logtape/logtape";
import { parseHostPort } from "../core/address.ts";
import { type BackendSpec, parseBackendSpec } from "../core/backend_spec.ts";
import type { PeerAddress } from "../core/peer_spec.ts";
import type { Registry } from "./registry.ts";
import { watchMembers } from "./watch.ts";

const log = getLogger(["galerad", "discover"]);

/** What following a registry changes in a proxy. */
export interface RegistryFollower {
  readonly name: string;
  /** Whether this proxy gossips (has a peer secret): only then are registered proxies its peers. */
  readonly gossips: boolean;
  setBackends(specs: BackendSpec[]): unknown;
  setPeers(peers: PeerAddress[]): void;
  /** A read of the registry failed (the last known members stay). */
  readFailed(error: Error): void;
}

/**
 * Takes backends (role node) and peers (role proxy) from a registry and follows it. A registry
 * that fails keeps the last known set (logged; the proxy counts it); the proxy itself keeps the
 * healthy active node whatever the registry says (Proxy.setBackends).
 */
export function followRegistry(
  proxy: RegistryFollower,
  registry: Registry,
  intervalMs: number,
): () => void {
  return watchMembers(registry, undefined, intervalMs, (members) => {
    const backends: BackendSpec[] = [];
    for (const m of members.filter((x) => x.role === "node")) {
      try {
        backends.push(
          parseBackendSpec(`${m.name}=${m.address}${m.health ? `,health=${m.health}` : ""}`),
        );
      } catch (error) {
        log.warn("ignoring registry member {name}: {error}", {
          name: m.name,
          error: (error as Error).message,
        });
      }
    }
    proxy.setBackends(backends);
    const peers = members.filter((x) => x.role === "proxy" && x.name !== proxy.name);
    if (proxy.gossips) {
      proxy.setPeers(peers.flatMap((m) => {
        const a = parseHostPort(m.address, "");
        return a ? [{ name: m.name, host: a.host, port: a.port }] : [];
      }));
    } else if (peers.length > 0) {
      log.warn(
        "the registry lists other proxies ({names}) but no peer secret is set: not gossiping with them",
        { names: peers.map((p) => p.name) },
      );
    }
  }, (error) => {
    proxy.readFailed(error);
    log.warn("cannot read the registry, keeping the last known members: {error}", {
      error: error.message,
    });
  });
}
