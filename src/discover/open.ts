import { parseHostPort } from "../core/address.ts";
import { ConsulRegistry } from "./consul.ts";
import { DnsRegistry } from "./dns.ts";
import { EtcdRegistry } from "./etcd.ts";
import type { Member, Registry, Role } from "./registry.ts";
import { StaticRegistry } from "./static.ts";

const EXPECTED =
  "expected etcd://HOST:PORT/PREFIX, consul://HOST:PORT, dns+srv://NAME, dns://NAME:PORT or static:ROLE/NAME=HOST:PORT,…";

/**
 * Opens the registry a URL names. Throws a TypeError quoting the URL and what was expected, so
 * the CLI can name the flag.
 */
export function openRegistry(url: string): Registry {
  if (url.startsWith("static:")) {
    const members: Member[] = [];
    for (const item of url.slice(7).split(/[,;\s]+/).filter(Boolean)) {
      const m = /^(node|proxy)\/([A-Za-z0-9][A-Za-z0-9_.-]*)=(.+)$/.exec(item);
      const address = m ? parseHostPort(m[3], "") : undefined;
      if (!m || !address || address.host === "") {
        throw new TypeError(`"${item}": expected ROLE/NAME=HOST:PORT with ROLE node or proxy`);
      }
      members.push({ role: m[1] as Role, name: m[2], address: m[3] });
    }
    return new StaticRegistry(url, members);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`"${url}": ${EXPECTED}`);
  }
  const hostPort = parsed.host;
  switch (parsed.protocol) {
    case "etcd:":
    case "etcd+http:":
    case "etcd+https:": {
      if (!hostPort) throw new TypeError(`"${url}": etcd needs a host, ${EXPECTED}`);
      const scheme = parsed.protocol === "etcd+https:" ? "https" : "http";
      const prefix = parsed.pathname.replace(/\/+$/, "") || "/galerad";
      return new EtcdRegistry(
        url,
        `${scheme}://${hostPort.includes(":") ? hostPort : `${hostPort}:2379`}`,
        prefix,
      );
    }
    case "consul:":
    case "consul+https:": {
      if (!hostPort) throw new TypeError(`"${url}": consul needs a host, ${EXPECTED}`);
      const scheme = parsed.protocol === "consul+https:" ? "https" : "http";
      return new ConsulRegistry(
        url,
        `${scheme}://${hostPort.includes(":") ? hostPort : `${hostPort}:8500`}`,
        parsed.searchParams.get("token") ?? undefined,
      );
    }
    case "dns+srv:":
    case "dns:": {
      const role = (parsed.searchParams.get("role") ?? "node") as Role;
      if (role !== "node" && role !== "proxy") {
        throw new TypeError(`"${url}": role must be node or proxy`);
      }
      const server = parsed.searchParams.get("server") ?? undefined;
      if (parsed.protocol === "dns+srv:") {
        if (!parsed.hostname) throw new TypeError(`"${url}": ${EXPECTED}`);
        return new DnsRegistry(url, "srv", parsed.hostname, null, role, server);
      }
      if (!parsed.hostname || !parsed.port) throw new TypeError(`"${url}": dns:// needs NAME:PORT`);
      return new DnsRegistry(url, "a", parsed.hostname, Number(parsed.port), role, server);
    }
    default:
      throw new TypeError(`"${url}": ${EXPECTED}`);
  }
}
