import type { Resolver } from "node:dns/promises";
import { parseHostPort, parseIp } from "../core/address.ts";
import {
  type Member,
  type Registration,
  type Registry,
  type Role,
  sortMembers,
} from "./registry.ts";

/**
 * DNS, read-only: SRV records (`dns+srv://_galera._tcp.example`), which also covers Consul DNS
 * and Kubernetes headless services, or A/AAAA records with a port (`dns://db.example:3306`).
 * `?server=HOST:PORT` picks the resolver; `?role=proxy` says what the records are (default node).
 */
export class DnsRegistry implements Registry {
  /** Made on first use: node:dns is loaded only by a process that reads DNS. */
  #resolver: Promise<Resolver> | null = null;
  readonly #server: string | undefined;

  constructor(
    readonly url: string,
    readonly kind: "srv" | "a",
    readonly name: string,
    readonly port: number | null,
    readonly role: Role,
    server?: string,
  ) {
    if (server !== undefined) {
      if (!parseIp(parseHostPort(server, "")?.host ?? server)) {
        throw new TypeError(`"${url}": server must be an IP address with an optional port`);
      }
      this.#server = server;
    }
  }

  #open(): Promise<Resolver> {
    this.#resolver ??= import("node:dns/promises").then(({ Resolver }) => {
      const resolver = new Resolver({ timeout: 2000, tries: 2 });
      if (this.#server) resolver.setServers([this.#server]);
      return resolver;
    });
    return this.#resolver;
  }

  async list(role?: Role): Promise<Member[]> {
    if (role && role !== this.role) return [];
    try {
      const resolver = await this.#open();
      if (this.kind === "srv") {
        const records = await resolver.resolveSrv(this.name);
        return sortMembers(records.map((r) => ({
          role: this.role,
          name: r.name.split(".")[0] || r.name,
          address: `${r.name.replace(/\.$/, "")}:${r.port}`,
        })));
      }
      const [v4, v6] = await Promise.all([
        resolver.resolve4(this.name).catch(() => [] as string[]),
        resolver.resolve6(this.name).catch(() => [] as string[]),
      ]);
      if (v4.length + v6.length === 0) {
        throw Object.assign(new Error("no A or AAAA records"), { code: "ENODATA" });
      }
      return sortMembers(
        [...v4, ...v6.map((a) => `[${a}]`)].map((a) => ({
          role: this.role,
          name: a.replace(/[\[\]]/g, ""),
          address: `${a}:${this.port}`,
        })),
      );
    } catch (error) {
      const e = error as { code?: string; message?: string };
      if (e.code === "ENOTFOUND" || e.code === "ENODATA") return [];
      throw new Error(`dns ${this.name}: ${e.code ?? e.message}`);
    }
  }

  register(): Promise<Registration> {
    return Promise.reject(
      new Error(
        `dns ${this.name}: DNS is read-only here; register with etcd or Consul, or publish the records`,
      ),
    );
  }
}
