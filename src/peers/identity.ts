/**
 * Per-party identities on the peer wire: each proxy and voting agent has an Ed25519 key pair;
 * every party knows every party's public key. The shared secret's HMAC stays the cheap first
 * filter (a stranger's datagram costs one HMAC); the signature then proves which party sent a
 * message, so whoever holds the shared secret, or one party's private key, can speak only as
 * that party: never as enough others to make a majority.
 */

/** This party's private key, and the name it signs as. */
export interface Identity {
  name: string;
  privateKey: CryptoKey;
  /** Its public key, raw (32 bytes), base64: the line others put in their public-keys file. */
  publicKey: string;
}

/** Every party's public key, by name. */
export type PublicKeys = ReadonlyMap<string, CryptoKey>;

export const SIGNATURE_BYTES = 64;
const ED25519 = { name: "Ed25519" } as const;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const unb64 = (text: string): Uint8Array<ArrayBuffer> =>
  Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/** A new key pair: the private key file's text and the public key, both base64. */
export async function generateIdentity(): Promise<{ privateKey: string; publicKey: string }> {
  const pair = await crypto.subtle.generateKey(ED25519, true, ["sign", "verify"]) as CryptoKeyPair;
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return { privateKey: b64(pkcs8), publicKey: b64(raw) };
}

/** Reads a private key file's text (base64 PKCS#8); throws a one-line Error saying what is wrong. */
export async function loadIdentity(name: string, text: string): Promise<Identity> {
  const line = text.split(/\r?\n/).map((l) => l.trim()).find((l) => l !== "" && !l.startsWith("#"));
  if (!line) throw new Error("the key file is empty");
  let privateKey: CryptoKey;
  try {
    privateKey = await crypto.subtle.importKey("pkcs8", unb64(line), ED25519, true, ["sign"]);
  } catch {
    throw new Error(
      "not an Ed25519 private key (expected base64 PKCS#8, as galerad keygen writes)",
    );
  }
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  const publicKey = b64(unb64(
    (jwk.x ?? "").replaceAll("-", "+").replaceAll("_", "/") +
      "=".repeat((4 - ((jwk.x ?? "").length % 4)) % 4),
  ));
  // Not extractable from here on: the key signs, nothing more.
  privateKey = await crypto.subtle.importKey("pkcs8", unb64(line), ED25519, false, ["sign"]);
  return { name, privateKey, publicKey };
}

/**
 * Reads a public-keys file: one `NAME BASE64` per line, `#` comments. Throws a one-line Error
 * naming the line for anything else.
 */
export async function loadPublicKeys(text: string): Promise<PublicKeys> {
  const out = new Map<string, CryptoKey>();
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const [name, key, ...rest] = line.split(/\s+/);
    const where = `line ${i + 1} ("${line.slice(0, 60)}")`;
    if (rest.length > 0 || !key || !NAME.test(name)) {
      throw new Error(`${where}: expected NAME BASE64-PUBLIC-KEY`);
    }
    if (out.has(name)) throw new Error(`${where}: ${name} is listed twice`);
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = unb64(key);
    } catch {
      throw new Error(`${where}: the key is not base64`);
    }
    if (bytes.length !== 32) {
      throw new Error(`${where}: an Ed25519 public key is 32 bytes, not ${bytes.length}`);
    }
    out.set(name, await crypto.subtle.importKey("raw", bytes, ED25519, true, ["verify"]));
  }
  if (out.size === 0) throw new Error("no public key in it");
  return out;
}

/** The base64 raw public key listed for `name`, or null. */
export async function publicKeyOf(keys: PublicKeys, name: string): Promise<string | null> {
  const key = keys.get(name);
  if (!key) return null;
  return b64(new Uint8Array(await crypto.subtle.exportKey("raw", key)));
}

export async function signAs(identity: Identity, data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.sign(ED25519, identity.privateKey, data as Uint8Array<ArrayBuffer>),
  );
}

export async function verifyFrom(
  keys: PublicKeys,
  name: string,
  signature: Uint8Array,
  data: Uint8Array,
): Promise<boolean> {
  const key = keys.get(name);
  if (!key) return false;
  return await crypto.subtle.verify(
    ED25519,
    key,
    signature as Uint8Array<ArrayBuffer>,
    data as Uint8Array<ArrayBuffer>,
  );
}
