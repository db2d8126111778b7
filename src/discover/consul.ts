import { requestJson } from "./http.ts";
import {
  type Member,
  parseMember,
  type Registration,
  type Registry,
  type Role,
  sortMembers,
} from "./registry.ts";

/**
 * Consul through its agent HTTP API: a service `galerad-<role>` per role, registered with a TTL
 * check that registration passes; listings ask the health endpoint for passing instances only.
 */
export class ConsulRegistry implements Registry {
  constructor(readonly url: string, readonly endpoint: string, readonly token?: string) {}

  #req(method: string, path: string, body?: unknown) {
    return requestJson(`consul ${this.endpoint}${path}`, `${this.endpoint}${path}`, {
      method,
      body,
      headers: this.token ? { "X-Consul-Token": this.token } : {},
    });
  }

  async list(role?: Role): Promise<Member[]> {
    const roles: Role[] = role ? [role] : ["node", "proxy"];
    const members: Member[] = [];
    for (const r of roles) {
      const entries = await this.#req("GET", `/v1/health/service/galerad-${r}?passing=true`);
      if (!Array.isArray(entries)) {
        throw new Error(`consul ${this.endpoint}: /v1/health/service answered no list`);
      }
      for (const e of entries) {
        const s = (e as { Service?: Record<string, unknown> }).Service ?? {};
        const meta = (s.Meta ?? {}) as Record<string, string>;
        const host = typeof s.Address === "string" && s.Address !== ""
          ? s.Address
          : ((e as { Node?: { Address?: string } }).Node?.Address ?? "");
        const m = parseMember({
          role: r,
          name: meta.name ?? s.ID,
          address: `${host}:${s.Port}`,
          health: meta.health,
          api: meta.api,
          galera: meta.galera,
        }, r);
        if (m) members.push(m);
      }
    }
    return sortMembers(members);
  }

  async register(
    member: Member,
    ttlMs: number,
    onError: (error: Error) => void,
  ): Promise<Registration> {
    const id = `galerad-${member.role}-${member.name}`;
    const [, host, port] = /^(.*):(\d+)$/.exec(member.address)!;
    const ttl = `${Math.max(2, Math.ceil(ttlMs / 1000))}s`;
    await this.#req("PUT", "/v1/agent/service/register", {
      ID: id,
      Name: `galerad-${member.role}`,
      Address: host.replace(/^\[|\]$/g, ""),
      Port: Number(port),
      Meta: {
        name: member.name,
        ...(member.health ? { health: member.health } : {}),
        ...(member.api ? { api: member.api } : {}),
        ...(member.galera ? { galera: member.galera } : {}),
      },
      Check: { CheckID: `service:${id}`, TTL: ttl, DeregisterCriticalServiceAfter: "1m" },
    });
    const pass = () => this.#req("PUT", `/v1/agent/check/pass/service:${encodeURIComponent(id)}`);
    await pass();
    const timer = setInterval(
      () => pass().catch((e) => onError(e as Error)),
      Math.max(500, ttlMs / 3),
    );
    return {
      close: async () => {
        clearInterval(timer);
        await this.#req("PUT", `/v1/agent/service/deregister/${encodeURIComponent(id)}`);
      },
    };
  }
}
