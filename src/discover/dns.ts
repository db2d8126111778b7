import { Resolver } from "node:dns/promises";
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
  readonly #resolver = new Resolver({ timeout: 2000, tries: 2 });

  constructor(
    readonly url: string,
    readonly kind: "srv" | "a",
    readonly name: string,
    readonly port: number | null,
    readonly role: Role,
    server?: string,
  ) {
    if (server) this.#resolver.setServers([server]);
  }

  async list(role?: Role): Promise<Member[]> {
    if (role && role !== this.role) return [];
    try {
      if (this.kind === "srv") {
        const records = await this.#resolver.resolveSrv(this.name);
        return sortMembers(records.map((r) => ({
          role: this.role,
          name: r.name.split(".")[0] || r.name,
          address: `${r.name.replace(/\.$/, "")}:${r.port}`,
        })));
      }
      const [v4, v6] = await Promise.all([
        this.#resolver.resolve4(this.name).catch(() => [] as string[]),
        this.#resolver.resolve6(this.name).catch(() => [] as string[]),
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
