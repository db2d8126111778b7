/**
 * HMAC-SHA256 of the peer wire, synchronous: WebCrypto's is asynchronous and costs a thread hop
 * per datagram, which at a few hundred datagrams a second per proxy was most of the gossip's
 * CPU. node:crypto is in both runtimes.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const MAC_BYTES = 32;

/** The MAC of `data` under `secret`. */
export function hmacSha256(secret: Uint8Array, data: Uint8Array): Uint8Array {
  return createHmac("sha256", secret).update(data).digest();
}

/** Whether `mac` is the MAC of `data` under `secret`, compared in constant time. */
export function macMatches(secret: Uint8Array, data: Uint8Array, mac: Uint8Array): boolean {
  return mac.length === MAC_BYTES && timingSafeEqual(hmacSha256(secret, data), mac);
}
