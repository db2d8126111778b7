import { requestJson } from "./http.ts";
import {
  type Member,
  parseMember,
  type Registration,
  type Registry,
  type Role,
  sortMembers,
} from "./registry.ts";

const enc = (s: string) => btoa(String.fromCharCode(...new TextEncoder().encode(s)));
const dec = (s: string) =>
  new TextDecoder().decode(Uint8Array.from(atob(s), (c) => c.charCodeAt(0)));

/** The key just past every key that starts with `prefix` (etcd's range_end for a prefix). */
function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

/**
 * etcd v3 through its HTTP/JSON gateway (no client library: the same code on Bun and Deno).
 * Members live at `<prefix>/<role>/<name>` as JSON, attached to a lease that registration keeps
 * alive; a crashed member's lease expires and its key goes with it.
 */
export class EtcdRegistry implements Registry {
  constructor(readonly url: string, readonly endpoint: string, readonly prefix: string) {}

  #call(path: string, body: unknown): Promise<Record<string, unknown>> {
    return requestJson(`etcd ${this.endpoint}${path}`, `${this.endpoint}${path}`, {
      method: "POST",
      body,
    }) as Promise<
      Record<string, unknown>
    >;
  }

  #key(role: Role, name: string): string {
    return `${this.prefix}/${role}/${name}`;
  }

  async list(role?: Role): Promise<Member[]> {
    const start = role ? `${this.prefix}/${role}/` : `${this.prefix}/`;
    const res = await this.#call("/v3/kv/range", {
      key: enc(start),
      range_end: enc(prefixEnd(start)),
    });
    const kvs = (res?.kvs ?? []) as { value?: string }[];
    const members: Member[] = [];
    for (const kv of kvs) {
      try {
        const m = parseMember(JSON.parse(dec(kv.value ?? "")), role);
        if (m) members.push(m);
      } catch {
        // a foreign or corrupt value under our prefix: not a member
      }
    }
    return sortMembers(members);
  }

  async register(
    member: Member,
    ttlMs: number,
    onError: (error: Error) => void,
  ): Promise<Registration> {
    const ttl = Math.max(2, Math.ceil(ttlMs / 1000));
    let lease = "";
    const put = async () => {
      const grant = await this.#call("/v3/lease/grant", { TTL: ttl });
      lease = String(grant.ID);
      await this.#call("/v3/kv/put", {
        key: enc(this.#key(member.role, member.name)),
        value: enc(JSON.stringify(member)),
        lease,
      });
    };
    await put();
    let closed = false;
    const timer = setInterval(async () => {
      if (closed) return;
      try {
        const res = await this.#call("/v3/lease/keepalive", { ID: lease });
        const result = res?.result as { TTL?: string } | undefined;
        if (!result?.TTL || Number(result.TTL) <= 0) await put(); // the lease expired: register anew
      } catch (error) {
        onError(error as Error);
        await put().catch(() => {});
      }
    }, Math.max(500, (ttl * 1000) / 3));
    return {
      close: async () => {
        closed = true;
        clearInterval(timer);
        await this.#call("/v3/lease/revoke", { ID: lease }).catch(() =>
          this.#call("/v3/kv/deleterange", { key: enc(this.#key(member.role, member.name)) })
        );
      },
    };
  }
}
