/** Who votes: the proxies themselves, the backends' agents, or (availability-first) nobody else. */
export type QuorumMode = "proxies" | "agents" | "none";

/**
 * The digest of a voter set that every datagram carries: two parties whose digests differ do
 * not count each other, so a proxy started with another peer list cannot make up a majority of
 * its own. FNV-1a over the mode and the sorted names; it names a set, it is no secret.
 */
export function voterDigest(mode: QuorumMode, voters: readonly string[]): string {
  const text = `${mode}|${[...voters].sort().join(",")}`;
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}

/** The strict majority of a voter set of this size. */
export function majorityOf(size: number): number {
  return Math.floor(size / 2) + 1;
}
