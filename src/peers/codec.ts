import type { HealthView } from "../core/group_decision.ts";
import type { Register } from "../core/register.ts";
import type { KeyRing } from "./keyring.ts";

/**
 * The peers wire format, version 1 (docs/peers.md has the table):
 *
 *   offset size field
 *   0      4    magic "GLRP"
 *   4      1    version (1)
 *   5      1    type (1 state, 2 reply to a stale peer, 3 hello from a starting proxy)
 *   6      2    payload length N, big-endian
 *   8      4    key id, big-endian (first 4 bytes of SHA-256 of the secret)
 *   12     8    boot id (random, new at every start)
 *   20     8    sequence number, big-endian, +1 per datagram within a boot
 *   28     N    payload: UTF-8 JSON (below)
 *   28+N   32   HMAC-SHA256 over bytes 0 .. 28+N-1
 */
export const MAGIC = [0x47, 0x4c, 0x52, 0x50]; // "GLRP"
export const VERSION = 1;
export const HEADER_BYTES = 28;
export const MAC_BYTES = 32;
/** Larger datagrams are dropped unread; a view of 100 backends fits well within it. */
export const MAX_DATAGRAM_BYTES = 16 * 1024;

export enum MessageType {
  State = 1,
  Reply = 2,
  Hello = 3,
}

/** What a datagram says. */
export interface PeerMessage {
  type: MessageType;
  /** Sender's stable name (`--name`). */
  from: string;
  /** Sender's start time, ms since the epoch: a newer boot of the same name supersedes. */
  boot: number;
  register: Register;
  view: HealthView;
  /** False while the sender is still learning the register after its start. */
  ready: boolean;
  /** Where the sender's API and dashboard are, for the springboard (optional). */
  api?: string;
}

/** The envelope fields that come with a verified message. */
export interface Envelope {
  keyId: number;
  bootId: string;
  seq: number;
}

/** Why a datagram was dropped; each reason is counted. */
export type DropReason =
  | "oversized"
  | "truncated"
  | "bad_magic"
  | "bad_version"
  | "bad_type"
  | "unknown_key"
  | "bad_signature"
  | "malformed"
  | "replayed"
  | "stale_boot"
  | "wrong_cluster"
  | "unknown_peer"
  | "self";

export class DecodeError extends Error {
  constructor(readonly reason: DropReason, message: string) {
    super(message);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Serialises and signs a message. */
export async function encodeMessage(
  message: PeerMessage,
  envelope: { bootId: Uint8Array; seq: number },
  keys: KeyRing,
): Promise<Uint8Array> {
  const payload = encoder.encode(JSON.stringify({
    from: message.from,
    boot: message.boot,
    ready: message.ready,
    reg: message.register,
    view: message.view,
    ...(message.api ? { api: message.api } : {}),
  }));
  if (HEADER_BYTES + payload.length + MAC_BYTES > MAX_DATAGRAM_BYTES) {
    throw new RangeError(
      `peer message is ${payload.length} bytes: the limit is ${
        MAX_DATAGRAM_BYTES - HEADER_BYTES - MAC_BYTES
      }`,
    );
  }
  const out = new Uint8Array(HEADER_BYTES + payload.length + MAC_BYTES);
  const dv = new DataView(out.buffer);
  out.set(MAGIC, 0);
  out[4] = VERSION;
  out[5] = message.type;
  dv.setUint16(6, payload.length);
  dv.setUint32(8, keys.signing.id);
  out.set(envelope.bootId.subarray(0, 8), 12);
  dv.setUint32(20, Math.floor(envelope.seq / 2 ** 32));
  dv.setUint32(24, envelope.seq >>> 0);
  out.set(payload, HEADER_BYTES);
  const signed = out.subarray(0, HEADER_BYTES + payload.length);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", keys.signing.key, signed));
  out.set(mac, HEADER_BYTES + payload.length);
  return out;
}

/**
 * Verifies and parses a datagram. Throws a DecodeError naming the drop reason for anything that
 * is not a well-formed, correctly signed message of a known key; never anything else.
 */
export async function decodeMessage(
  data: Uint8Array,
  keys: KeyRing,
): Promise<{ message: PeerMessage; envelope: Envelope }> {
  if (data.length > MAX_DATAGRAM_BYTES) throw new DecodeError("oversized", `${data.length} bytes`);
  if (data.length < HEADER_BYTES + MAC_BYTES) {
    throw new DecodeError("truncated", `${data.length} bytes`);
  }
  if (MAGIC.some((b, i) => data[i] !== b)) {
    throw new DecodeError("bad_magic", "not a galerad peer datagram");
  }
  if (data[4] !== VERSION) throw new DecodeError("bad_version", `version ${data[4]}`);
  const type = data[5];
  if (type !== MessageType.State && type !== MessageType.Reply && type !== MessageType.Hello) {
    throw new DecodeError("bad_type", `type ${type}`);
  }
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const length = dv.getUint16(6);
  if (data.length !== HEADER_BYTES + length + MAC_BYTES) {
    throw new DecodeError(
      "truncated",
      `length field ${length} does not match ${data.length} bytes`,
    );
  }
  const keyId = dv.getUint32(8);
  const key = keys.byId.get(keyId);
  if (!key) throw new DecodeError("unknown_key", `key id ${keyId.toString(16)}`);
  // Copies: WebCrypto takes ArrayBuffer-backed views only.
  const signed = data.slice(0, HEADER_BYTES + length);
  const mac = data.slice(HEADER_BYTES + length);
  if (!(await crypto.subtle.verify("HMAC", key.key, mac, signed))) {
    throw new DecodeError("bad_signature", "HMAC does not match");
  }
  const bootId = Array.from(data.subarray(12, 20), (b) => b.toString(16).padStart(2, "0")).join("");
  const seq = dv.getUint32(20) * 2 ** 32 + dv.getUint32(24);
  let body: unknown;
  try {
    body = JSON.parse(decoder.decode(data.subarray(HEADER_BYTES, HEADER_BYTES + length)));
  } catch {
    throw new DecodeError("malformed", "payload is not UTF-8 JSON");
  }
  return { message: { type, ...parseBody(body) }, envelope: { keyId, bootId, seq } };
}

function parseBody(body: unknown): Omit<PeerMessage, "type"> {
  const bad = (what: string): never => {
    throw new DecodeError("malformed", what);
  };
  if (typeof body !== "object" || body === null) return bad("payload is not an object");
  const b = body as Record<string, unknown>;
  if (typeof b.from !== "string" || b.from === "" || b.from.length > 128) bad("from");
  if (typeof b.boot !== "number" || !Number.isFinite(b.boot)) bad("boot");
  if (typeof b.ready !== "boolean") bad("ready");
  if (b.api !== undefined && (typeof b.api !== "string" || b.api.length > 512)) bad("api");
  const r = b.reg as Record<string, unknown> | null;
  if (typeof r !== "object" || r === null) return bad("reg");
  if (typeof r.cluster !== "string") bad("reg.cluster");
  if (typeof r.epoch !== "number" || !Number.isSafeInteger(r.epoch) || r.epoch < 0) {
    bad("reg.epoch");
  }
  if (typeof r.proposer !== "string") bad("reg.proposer");
  if (r.active !== null && typeof r.active !== "string") bad("reg.active");
  if (typeof r.reason !== "string") bad("reg.reason");
  if (typeof r.time !== "number") bad("reg.time");
  const v = b.view as Record<string, unknown> | null;
  if (typeof v !== "object" || v === null || Array.isArray(v)) return bad("view");
  const view: HealthView = {};
  for (const [name, entry] of Object.entries(v)) {
    const e = entry as Record<string, unknown> | null;
    if (typeof e !== "object" || e === null || typeof e.healthy !== "boolean") bad(`view.${name}`);
    const index = e!.index;
    if (index !== null && (typeof index !== "number" || !Number.isInteger(index))) {
      bad(`view.${name}.index`);
    }
    view[name] = { healthy: e!.healthy as boolean, index: index as number | null };
  }
  return {
    from: b.from as string,
    boot: b.boot as number,
    ready: b.ready as boolean,
    ...(typeof b.api === "string" ? { api: b.api } : {}),
    register: {
      cluster: r.cluster as string,
      epoch: r.epoch as number,
      proposer: r.proposer as string,
      active: r.active as string | null,
      reason: r.reason as string,
      time: r.time as number,
    },
    view,
  };
}
