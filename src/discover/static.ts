import {
  type Member,
  type Registration,
  type Registry,
  type Role,
  sortMembers,
} from "./registry.ts";

/** A fixed list, `static:node/db0=10.0.0.5:3306,proxy/p1=10.0.0.11:10000`; read-only. */
export class StaticRegistry implements Registry {
  constructor(readonly url: string, readonly members: Member[]) {}

  list(role?: Role): Promise<Member[]> {
    return Promise.resolve(sortMembers(this.members.filter((m) => !role || m.role === role)));
  }

  register(): Promise<Registration> {
    return Promise.reject(new Error("static: a static list cannot be registered with"));
  }
}
