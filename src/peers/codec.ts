import type { AgreementMessage } from "../core/agreement_message.ts";
import type { HealthView } from "../core/health_view.ts";
import { MAX_EPOCH, MAX_NAME, parseRegister, type Register } from "../core/register.ts";
import { hmacSha256, MAC_BYTES, macMatches } from "./hmac.ts";
import { signAs, SIGNATURE_BYTES, verifyFrom } from "./identity.ts";
import type { KeyRing } from "./keyring.ts";

/**
 * The peers wire format, version 2 (docs/peers.md has the table):
 *
 *   offset size field
 *   0      4    magic "GLRP"
 *   4      1    version (2)
 *   5      1    kind (1 state, 2 reply, 3 request, 4 same: news unchanged, compact_news.ts)
 *   6      2    payload length N, big-endian
 *   8      4    key id, big-endian (first 4 bytes of SHA-256 of the secret)
 *   12     8    boot id (random, new at every start)
 *   20     8    sequence number, big-endian, +1 per datagram within a boot
 *   28     N    payload: UTF-8 JSON of the agreement message, destination included
 *   28+N   64   (with sender keys: kind | 0x80) Ed25519 signature by `from` over bytes 0 .. 28+N-1
 *   28+N+S 32   HMAC-SHA256 over every byte before it (S: 64 or 0)
 */
export const MAGIC = [0x47, 0x4c, 0x52, 0x50]; // "GLRP"
export const VERSION = 2;
export const HEADER_BYTES = 28;
export { MAC_BYTES };
/** Larger datagrams are dropped unread; the largest message the bounds allow fits in it. */
export const MAX_DATAGRAM_BYTES = 16 * 1024;
/** At most this many backends in a view or a target list. */
export const MAX_BACKENDS = 64;
/** Longest URL carried (a target, an API address). */
export const MAX_URL = 256;
/** No lease is longer than this (ms): a restarted voter waits one before it grants. */
export const MAX_LEASE = 600_000;
/** A wsrep_local_index is below this; anything else is not a cluster of this world. */
export const MAX_INDEX = 65_536;

const KINDS = { state: 1, reply: 2, request: 3, same: 4 } as const;
/** Set in the kind byte: a 64-byte Ed25519 signature by `from` follows the payload. */
const SIGNED_BY_SENDER = 0x80;
const KIND_OF: Record<number, AgreementMessage["kind"] | "same"> = {
  1: "state",
  2: "reply",
  3: "request",
  4: "same",
};

/**
 * A message as it travels: the agreement message, the sender's API URL for springboards, and,
 * to a party that reads compact news, which of its news the sender holds (compact_news.ts).
 */
export interface PeerMessage extends AgreementMessage {
  api?: string;
  heard?: string;
}

/**
 * News unchanged (kind 4): "my news to you is still the one hashed `same`". Sent only to a
 * party that reads it; one that does not drops it as bad_type, as releases before it do.
 */
export interface SameNews {
  kind: "same";
  from: string;
  to: string;
  incarnation: string;
  digest: string;
  same: string;
  /** What the sender holds of the receiver's news, as in PeerMessage. */
  heard: string;
}

/** A news hash as the wire carries it: 32 hex digits (128 bits of SHA-256). */
const HASH_RE = /^[0-9a-f]{32}$/;

/** The envelope fields that come with a verified message. */
export interface Envelope {
  keyId: number;
  bootId: string;
  seq: number;
}

/** Why a datagram was dropped; each reason is counted (and exported from the start at zero). */
export const DROP_REASONS = [
  "oversized",
  "truncated",
  "bad_magic",
  "bad_version",
  "bad_type",
  "unknown_key",
  "bad_signature",
  "malformed",
  "replayed",
  "unknown_source",
  // Dropped by the kernel, never read: its source filter, or the receive buffer was full.
  "kernel",
  "unknown_peer",
  "misdirected",
  "wrong_cluster",
  "voter_set",
  "self",
  "rate_limited",
  "bad_identity",
  // A "same" naming news we do not hold (a whole one was lost, or we restarted).
  "stale_news",
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

export class DecodeError extends Error {
  constructor(readonly reason: DropReason, message: string) {
    super(message);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Serialises and signs a message; a message the bounds refuse is a RangeError, never sent. */
export async function encodeMessage(
  message: PeerMessage,
  envelope: { bootId: Uint8Array; seq: number },
  keys: KeyRing,
): Promise<Uint8Array> {
  const { kind, ...body } = message;
  const problem = bodyProblem(body);
  if (problem) throw new RangeError(`peer message not sent: ${problem}`);
  if (keys.identity && keys.identity.name !== message.from) {
    throw new RangeError(
      `peer message not sent: from ${message.from}, but the key is ${keys.identity.name}'s`,
    );
  }
  return await signFrame(kind, encoder.encode(JSON.stringify(body)), envelope, keys);
}

/** Serialises and signs a "news unchanged" datagram. */
export async function encodeSame(
  same: SameNews,
  envelope: { bootId: Uint8Array; seq: number },
  keys: KeyRing,
): Promise<Uint8Array> {
  const { kind: _, ...body } = same;
  const problem = sameProblem(body);
  if (problem) throw new RangeError(`peer message not sent: ${problem}`);
  return await signFrame("same", encoder.encode(JSON.stringify(body)), envelope, keys);
}

/**
 * Frames and signs a payload as it is, unchecked: encodeMessage's last step, and how the fuzz
 * suite makes signed datagrams that the bounds must refuse on arrival.
 */
export async function signFrame(
  kind: AgreementMessage["kind"] | "same",
  payload: Uint8Array,
  envelope: { bootId: Uint8Array; seq: number },
  keys: KeyRing,
): Promise<Uint8Array> {
  const extra = keys.identity ? SIGNATURE_BYTES : 0;
  if (HEADER_BYTES + payload.length + extra + MAC_BYTES > MAX_DATAGRAM_BYTES) {
    throw new RangeError(
      `peer message is ${payload.length} bytes: the limit is ${
        MAX_DATAGRAM_BYTES - HEADER_BYTES - extra - MAC_BYTES
      }`,
    );
  }
  const out = new Uint8Array(HEADER_BYTES + payload.length + extra + MAC_BYTES);
  const dv = new DataView(out.buffer);
  out.set(MAGIC, 0);
  out[4] = VERSION;
  out[5] = KINDS[kind] | (keys.identity ? SIGNED_BY_SENDER : 0);
  dv.setUint16(6, payload.length);
  dv.setUint32(8, keys.signing.id);
  out.set(envelope.bootId.subarray(0, 8), 12);
  dv.setUint32(20, Math.floor(envelope.seq / 2 ** 32));
  dv.setUint32(24, envelope.seq >>> 0);
  out.set(payload, HEADER_BYTES);
  if (keys.identity) {
    // The sender's signature over the header and payload, inside what the HMAC covers.
    const sig = await signAs(keys.identity, out.slice(0, HEADER_BYTES + payload.length));
    out.set(sig, HEADER_BYTES + payload.length);
  }
  const signed = out.subarray(0, HEADER_BYTES + payload.length + extra);
  out.set(hmacSha256(keys.signing.secret, signed), HEADER_BYTES + payload.length + extra);
  return out;
}

/**
 * Verifies and parses a datagram. Throws a DecodeError naming the drop reason for anything that
 * is not a well-formed, correctly signed message of a known key within every bound; never
 * anything else. A party that does not read compact news (an agent) drops "same" as bad_type.
 */
export async function decodeMessage(
  data: Uint8Array,
  keys: KeyRing,
): Promise<{ message: PeerMessage; envelope: Envelope }> {
  const decoded = await decodeDatagram(data, keys);
  if (decoded.message.kind === "same") throw new DecodeError("bad_type", "kind 4");
  return decoded as { message: PeerMessage; envelope: Envelope };
}

/** decodeMessage, "news unchanged" included: for the proxies' transport. */
export async function decodeDatagram(
  data: Uint8Array,
  keys: KeyRing,
): Promise<{ message: PeerMessage | SameNews; envelope: Envelope }> {
  if (data.length > MAX_DATAGRAM_BYTES) throw new DecodeError("oversized", `${data.length} bytes`);
  if (data.length < HEADER_BYTES + MAC_BYTES) {
    throw new DecodeError("truncated", `${data.length} bytes`);
  }
  if (MAGIC.some((b, i) => data[i] !== b)) {
    throw new DecodeError("bad_magic", "not a galerad peer datagram");
  }
  if (data[4] !== VERSION) throw new DecodeError("bad_version", `version ${data[4]}`);
  const kind = KIND_OF[data[5] & ~SIGNED_BY_SENDER];
  if (!kind) throw new DecodeError("bad_type", `kind ${data[5]}`);
  const bySender = (data[5] & SIGNED_BY_SENDER) !== 0;
  const extra = bySender ? SIGNATURE_BYTES : 0;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const length = dv.getUint16(6);
  if (data.length !== HEADER_BYTES + length + extra + MAC_BYTES) {
    throw new DecodeError(
      "truncated",
      `length field ${length} does not match ${data.length} bytes`,
    );
  }
  const keyId = dv.getUint32(8);
  const key = keys.byId.get(keyId);
  if (!key) throw new DecodeError("unknown_key", `key id ${keyId.toString(16)}`);
  // A copy: a sender's signature is checked with WebCrypto, which takes ArrayBuffer views only.
  const signed = data.slice(0, HEADER_BYTES + length + extra);
  const mac = data.subarray(HEADER_BYTES + length + extra);
  if (!macMatches(key.secret, signed, mac)) {
    throw new DecodeError("bad_signature", "HMAC does not match");
  }
  if (keys.publicKeys && !bySender) {
    throw new DecodeError("bad_identity", "not signed by its sender, and sender keys are required");
  }
  const bootId = Array.from(data.subarray(12, 20), (b) => b.toString(16).padStart(2, "0")).join("");
  const seq = dv.getUint32(20) * 2 ** 32 + dv.getUint32(24);
  let body: unknown;
  try {
    body = JSON.parse(decoder.decode(data.subarray(HEADER_BYTES, HEADER_BYTES + length)));
  } catch {
    throw new DecodeError("malformed", "payload is not UTF-8 JSON");
  }
  if (kind === "same") {
    const problem = sameProblem(body);
    if (problem) throw new DecodeError("malformed", problem);
    const same = { kind, ...(body as Omit<SameNews, "kind">) };
    if (keys.publicKeys) await verifySender(keys, same.from, signed, length);
    return { message: same, envelope: { keyId, bootId, seq } };
  }
  const problem = bodyProblem(body);
  if (problem) throw new DecodeError("malformed", problem);
  const message = { kind, ...(body as Omit<PeerMessage, "kind">) };
  if ((kind === "request") !== (message.request !== undefined)) {
    throw new DecodeError("malformed", "a request must carry request, and only a request");
  }
  if ((kind === "reply") !== (message.grant !== undefined)) {
    throw new DecodeError("malformed", "a reply must carry grant, and only a reply");
  }
  if (keys.publicKeys) await verifySender(keys, message.from, signed, length);
  return { message, envelope: { keyId, bootId, seq } };
}

/** With sender keys: `from`'s own signature over header and payload, or a bad_identity drop. */
async function verifySender(
  keys: KeyRing,
  from: string,
  signed: Uint8Array,
  length: number,
): Promise<void> {
  const publicKeys = keys.publicKeys!;
  // Views of the copy the HMAC checked: the sender signed header and payload.
  const covered = signed.subarray(0, HEADER_BYTES + length);
  const sig = signed.subarray(HEADER_BYTES + length);
  if (!(await verifyFrom(publicKeys, from, sig, covered))) {
    throw new DecodeError(
      "bad_identity",
      publicKeys.has(from) ? `not signed by ${from}'s key` : `no public key for ${from}`,
    );
  }
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function nameProblem(value: unknown, field: string, nullable = false): string | null {
  if (nullable && value === null) return null;
  if (typeof value === "string" && value.length <= MAX_NAME && NAME_RE.test(value)) return null;
  return `${field} is ${
    JSON.stringify(value)?.slice(0, 80)
  }: expected a name of 1-${MAX_NAME} letters, digits, '.', '_' or '-'`;
}

function numberProblem(value: unknown, field: string, max: number): string | null {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0 && value <= max) {
    return null;
  }
  return `${field} is ${JSON.stringify(value)?.slice(0, 40)}: expected a number from 0 to ${max}`;
}

function registerProblem(value: unknown, field: string): string | null {
  const r = parseRegister(value);
  if (typeof r === "string") return `${field}: ${r}`;
  if (r.reason !== (value as Register).reason) return `${field}.reason is longer than allowed`;
  return null;
}

function viewProblem(value: unknown): string | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "view is not an object";
  }
  const entries = Object.entries(value as HealthView);
  if (entries.length > MAX_BACKENDS) {
    return `view has ${entries.length} backends: at most ${MAX_BACKENDS}`;
  }
  for (const [name, entry] of entries) {
    const p = nameProblem(name, "view name");
    if (p) return p;
    const e = entry as unknown as Record<string, unknown> | null;
    if (typeof e !== "object" || e === null || typeof e.healthy !== "boolean") {
      return `view.${name}`;
    }
    if (
      e.index !== null && (!Number.isSafeInteger(e.index) || numberProblem(e.index, "", MAX_INDEX))
    ) {
      return `view.${name}.index is ${JSON.stringify(e.index)}: expected null or 0-${MAX_INDEX}`;
    }
    if (Object.keys(e).length !== 2) return `view.${name} has unknown fields`;
  }
  return null;
}

function urlProblem(value: unknown, field: string): string | null {
  if (typeof value === "string" && value.length <= MAX_URL && /^https?:\/\/[^\s]+$/.test(value)) {
    return null;
  }
  return `${field} is ${
    JSON.stringify(value)?.slice(0, 80)
  }: expected an http(s) URL of at most ${MAX_URL} characters`;
}

/** The fields a message body may have. */
const BODY_FIELDS: ReadonlySet<string> = new Set([
  "from",
  "to",
  "incarnation",
  "digest",
  "register",
  "epochSeen",
  "view",
  "serving",
  "request",
  "grant",
  "follow",
  "targets",
  "api",
  "heard",
]);

/** The fields a "news unchanged" body may have. */
const SAME_FIELDS: ReadonlySet<string> = new Set([
  "from",
  "to",
  "incarnation",
  "digest",
  "same",
  "heard",
]);

/**
 * What every body starts with: an object of known `fields` only, naming its sender, its
 * destination and the sender's life, with the sender's voter-set digest.
 */
function headProblem(body: unknown, fields: ReadonlySet<string>): string | null {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return "payload is not an object";
  }
  const b = body as Record<string, unknown>;
  for (const key of Object.keys(b)) {
    if (!fields.has(key)) return `unknown field ${key.slice(0, 40)}`;
  }
  return nameProblem(b.from, "from") ?? nameProblem(b.to, "to") ??
    nameProblem(b.incarnation, "incarnation") ??
    (typeof b.digest === "string" && /^[0-9a-f]{0,16}$/.test(b.digest) ? null : "digest");
}

/** The fields of a "news unchanged" body, each within its bounds; what is wrong, or null. */
function sameProblem(body: unknown): string | null {
  const head = headProblem(body, SAME_FIELDS);
  if (head) return head;
  const b = body as Record<string, unknown>;
  return (typeof b.same === "string" && HASH_RE.test(b.same)
    ? null
    : `same is ${JSON.stringify(b.same)?.slice(0, 40)}: expected 32 hex digits`) ??
    heardProblem(b.heard, false);
}

/** `heard`: "" or a news hash; optional in a message, required in a "same". */
function heardProblem(value: unknown, optional: boolean): string | null {
  if (optional && value === undefined) return null;
  if (typeof value === "string" && (value === "" || HASH_RE.test(value))) return null;
  return `heard is ${JSON.stringify(value)?.slice(0, 40)}: expected "" or 32 hex digits`;
}

/** Every field of a message body, within its bounds; a line saying what is wrong, or null. */
function bodyProblem(body: unknown): string | null {
  const head = headProblem(body, BODY_FIELDS);
  if (head) return head;
  const b = body as Record<string, unknown>;
  const problem = registerProblem(b.register, "register") ??
    (Number.isSafeInteger(b.epochSeen)
      ? numberProblem(b.epochSeen, "epochSeen", MAX_EPOCH)
      : "epochSeen") ??
    viewProblem(b.view) ?? nameProblem(b.serving, "serving", true);
  if (problem) return problem;
  if (b.request !== undefined) {
    const r = b.request as Record<string, unknown> | null;
    if (typeof r !== "object" || r === null) return "request is not an object";
    const p = numberProblem(r.t, "request.t", Number.MAX_SAFE_INTEGER) ??
      numberProblem(r.lease, "request.lease", MAX_LEASE) ??
      nameProblem(r.serving, "request.serving", true);
    if (p) return p;
  }
  if (b.grant !== undefined) {
    const g = b.grant as Record<string, unknown> | null;
    if (typeof g !== "object" || g === null) return "grant is not an object";
    const p = numberProblem(g.t, "grant.t", Number.MAX_SAFE_INTEGER) ??
      nameProblem(g.incarnation, "grant.incarnation") ?? nameProblem(g.node, "grant.node", true) ??
      numberProblem(g.lease, "grant.lease", MAX_LEASE) ??
      (typeof g.why === "string" && g.why.length <= 2 * 240 ? null : "grant.why") ??
      (g.wait === undefined || typeof g.wait === "boolean" ? null : "grant.wait");
    if (p) return p;
  }
  if (b.follow !== undefined) {
    const f = b.follow as Record<string, unknown> | null;
    if (typeof f !== "object" || f === null || typeof f.majority !== "boolean") return "follow";
    const p = registerProblem(f.register, "follow.register");
    if (p) return p;
  }
  if (b.targets !== undefined) {
    if (typeof b.targets !== "object" || b.targets === null || Array.isArray(b.targets)) {
      return "targets";
    }
    const entries = Object.entries(b.targets as Record<string, unknown>);
    if (entries.length > MAX_BACKENDS) {
      return `targets has ${entries.length} entries: at most ${MAX_BACKENDS}`;
    }
    for (const [name, url] of entries) {
      const p = nameProblem(name, "targets name") ?? urlProblem(url, `targets.${name}`);
      if (p) return p;
    }
  }
  if (b.api !== undefined) {
    const p = urlProblem(b.api, "api");
    if (p) return p;
  }
  return heardProblem(b.heard, true);
}
