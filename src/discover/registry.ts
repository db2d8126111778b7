/** What a member of a cluster or proxy tier is, as registries hold it. */
export type Role = "node" | "proxy";

export interface Member {
  role: Role;
  name: string;
  /** HOST:PORT: a node's MySQL address, or a proxy's peer (gossip) address. */
  address: string;
  /** A node's health agent URL. */
  health?: string;
  /** A proxy's API URL. */
  api?: string;
  /** A node's Galera (gcomm) address HOST:PORT, when not its host on Galera's default port. */
  galera?: string;
}

/** A live registration; closing it removes the entry (a crash lets its TTL expire it). */
export interface Registration {
  close(): Promise<void>;
}

/**
 * One interface over the registries operators already run. Every call is bounded in time and
 * throws an Error whose message names the registry and what failed.
 */
export interface Registry {
  readonly url: string;
  /** Current members, sorted by role then name; only healthy ones where the registry knows. */
  list(role?: Role): Promise<Member[]>;
  /** Keeps `member` registered until closed, renewing it well within `ttlMs`. */
  register(member: Member, ttlMs: number, onError: (error: Error) => void): Promise<Registration>;
}

/** Sorts members by role, then name: the order every listing uses. */
export function sortMembers(members: Member[]): Member[] {
  return members.sort((
    a,
    b,
  ) => (a.role === b.role
    ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    : a.role < b.role
    ? -1
    : 1)
  );
}

/** Checks a member read from a registry; returns null for anything malformed. */
export function parseMember(value: unknown, role?: Role): Member | null {
  if (typeof value !== "object" || value === null) return null;
  const v = value as Record<string, unknown>;
  if (v.role !== "node" && v.role !== "proxy") return null;
  if (role && v.role !== role) return null;
  if (
    typeof v.name !== "string" || v.name === "" || typeof v.address !== "string" ||
    !/:\d+$/.test(v.address)
  ) return null;
  return {
    role: v.role,
    name: v.name,
    address: v.address,
    ...(typeof v.health === "string" ? { health: v.health } : {}),
    ...(typeof v.api === "string" ? { api: v.api } : {}),
    ...(typeof v.galera === "string" ? { galera: v.galera } : {}),
  };
}

/**
 * `wsrep_cluster_address` for a set of nodes: each node's registered Galera address, else its
 * host (on `galeraPort`, or Galera's default port).
 */
export function gcommAddress(members: Member[], galeraPort?: number): string {
  const hosts = members.filter((m) => m.role === "node").map((m) => {
    if (m.galera) return m.galera;
    const host = m.address.replace(/:\d+$/, "");
    return galeraPort ? `${host}:${galeraPort}` : host;
  });
  return `gcomm://${hosts.join(",")}`;
}
