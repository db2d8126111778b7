import type { Identity, PublicKeys } from "./identity.ts";

/** One shared secret for HMAC-SHA256 (hmac.ts), with the id packets name it by. */
export interface PeerKey {
  /** First 4 bytes of SHA-256(secret), big-endian: names the key without revealing it. */
  id: number;
  secret: Uint8Array;
}

/**
 * The secrets proxies sign gossip with. The first key signs; every key verifies, so keys rotate
 * without a flag day: add the new secret second everywhere, then move it first, then drop the old.
 */
export interface KeyRing {
  signing: PeerKey;
  byId: Map<number, PeerKey>;
  /** This party's key pair (identity.ts): outgoing messages are signed as it. */
  identity?: Identity;
  /** Every party's public key: when set, a message counts only if signed by its `from`. */
  publicKeys?: PublicKeys;
}

const MIN_SECRET_BYTES = 16;

/** Imports secrets (text, at least 16 bytes each) into a key ring; the first one signs. */
export async function createKeyRing(secrets: readonly string[]): Promise<KeyRing> {
  if (secrets.length === 0) throw new TypeError("a key ring needs at least one secret");
  const keys: PeerKey[] = [];
  for (const secret of secrets) {
    const bytes = new TextEncoder().encode(secret);
    if (bytes.length < MIN_SECRET_BYTES) {
      throw new RangeError(
        `a peer secret must be at least ${MIN_SECRET_BYTES} bytes: current length is ${bytes.length}`,
      );
    }
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    const id = new DataView(digest.buffer).getUint32(0);
    keys.push({ id, secret: bytes });
  }
  return { signing: keys[0], byId: new Map(keys.map((k) => [k.id, k])) };
}
