import { describe, expect, test } from "bun:test";
import {
  decodeDatagram,
  DecodeError,
  decodeMessage,
  encodeMessage,
  encodeSame,
  HEADER_BYTES,
  MAX_DATAGRAM_BYTES,
  type PeerMessage,
  signFrame,
} from "../../src/peers/codec.ts";
import { createKeyRing } from "../../src/peers/keyring.ts";
import { checkReplay, type ReplayState, WINDOW } from "../../src/peers/replay.ts";

const message: PeerMessage = {
  kind: "request",
  from: "proxy-a",
  to: "proxy-b",
  incarnation: "0a1b2c3d4e5f",
  digest: "1234abcd",
  register: {
    cluster: "galera",
    epoch: 7,
    proposer: "proxy-b",
    incarnation: "99aa",
    active: "db1",
    previous: "db0",
    kind: "failover",
    reason: "db0 is down here; db1 has the lowest wsrep_local_index 1",
    time: 123,
  },
  epochSeen: 7,
  view: {
    db0: { healthy: false, index: 0 },
    db1: { healthy: true, index: 1 },
    db2: { healthy: true, index: null },
  },
  serving: "db1",
  request: { t: 1234.5, serving: "db1", lease: 2000 },
};
const bootId = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
const ring = await createKeyRing(["correct horse battery staple"]);

/** Signs a body exactly as given, skipping encodeMessage's bounds (what a key holder can do). */
async function signRaw(m: PeerMessage): Promise<Uint8Array> {
  const { kind: _kind, ...body } = m;
  const payload = new TextEncoder().encode(JSON.stringify(body));
  const out = new Uint8Array(HEADER_BYTES + payload.length + 32);
  const dv = new DataView(out.buffer);
  out.set([0x47, 0x4c, 0x52, 0x50], 0);
  out[4] = 2;
  out[5] = 3;
  dv.setUint16(6, payload.length);
  dv.setUint32(8, ring.signing.id);
  out.set(bootId, 12);
  dv.setUint32(24, 1);
  out.set(payload, HEADER_BYTES);
  // WebCrypto's HMAC, not the codec's: the two must agree.
  const key = await crypto.subtle.importKey(
    "raw",
    ring.signing.secret,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, out.subarray(0, HEADER_BYTES + payload.length));
  out.set(new Uint8Array(mac), HEADER_BYTES + payload.length);
  return out;
}

async function reason(data: Uint8Array, keys = ring): Promise<string> {
  try {
    await decodeMessage(data, keys);
    return "accepted";
  } catch (error) {
    expect(error).toBeInstanceOf(DecodeError);
    return (error as DecodeError).reason;
  }
}

describe("peer codec", () => {
  test("round-trips a message with its envelope", async () => {
    const data = await encodeMessage(message, { bootId, seq: 2 ** 40 + 5 }, ring);
    const { message: back, envelope } = await decodeMessage(data, ring);
    expect(back).toEqual(message);
    expect(envelope).toEqual({
      keyId: ring.signing.id,
      bootId: "0102030405060708",
      seq: 2 ** 40 + 5,
    });
  });

  test("every byte flipped is refused, never accepted or thrown past", async () => {
    const data = await encodeMessage(message, { bootId, seq: 1 }, ring);
    for (let i = 0; i < data.length; i += 7) {
      const copy = data.slice();
      copy[i] ^= 0x41;
      expect(await reason(copy)).not.toBe("accepted");
    }
  });

  test("names the reason for each malformed shape", async () => {
    const data = await encodeMessage(message, { bootId, seq: 1 }, ring);
    expect(await reason(data.subarray(0, 10))).toBe("truncated");
    expect(await reason(data.subarray(0, data.length - 1))).toBe("truncated");
    expect(await reason(new Uint8Array(MAX_DATAGRAM_BYTES + 1))).toBe("oversized");
    const magic = data.slice();
    magic[0] = 0;
    expect(await reason(magic)).toBe("bad_magic");
    const version = data.slice();
    version[4] = 9;
    expect(await reason(version)).toBe("bad_version");
    const type = data.slice();
    type[5] = 77;
    expect(await reason(type)).toBe("bad_type");
    expect(
      await reason(
        new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + "x".repeat(100) + ""),
      ),
    ).toBe("bad_magic");
    expect(await reason(crypto.getRandomValues(new Uint8Array(200)))).toBe("bad_magic");
  });

  test("a datagram signed with another secret is refused", async () => {
    const other = await createKeyRing(["a different shared secret!"]);
    const forged = await encodeMessage(message, { bootId, seq: 1 }, other);
    expect(await reason(forged)).toBe("unknown_key");
    // Same key id but a wrong MAC: the signature check catches it.
    const tampered = (await encodeMessage(message, { bootId, seq: 1 }, ring)).slice();
    tampered[HEADER_BYTES + 3] ^= 1;
    expect(await reason(tampered)).toBe("bad_signature");
  });

  test("a message out of bounds is never sent, and never accepted when signed by a key holder", async () => {
    const bad: PeerMessage[] = [
      { ...message, register: { ...message.register, epoch: -1 } },
      { ...message, register: { ...message.register, epoch: 2 ** 53 - 1 } },
      { ...message, register: { ...message.register, epoch: 1.5 } },
      { ...message, register: { ...message.register, reason: "x".repeat(1_000) } },
      { ...message, view: [] as unknown as PeerMessage["view"] },
      { ...message, request: { t: 1, serving: null, lease: 1e300 } },
      { ...message, from: "a".repeat(200) },
      { ...message, to: "" },
      { ...message, epochSeen: 1e300 },
      { ...message, api: "javascript:alert(1)" },
    ];
    for (const m of bad) {
      await expect(encodeMessage(m, { bootId, seq: 1 }, ring)).rejects.toThrow(RangeError);
      // The same body signed by hand, as a key holder could: refused as malformed.
      expect(await reason(await signRaw(m))).toBe("malformed");
    }
  });

  test("key rotation: the ring verifies every key and signs with the first", async () => {
    const old = await createKeyRing(["the old shared secret value"]);
    const rotating = await createKeyRing([
      "the new shared secret value",
      "the old shared secret value",
    ]);
    expect(await reason(await encodeMessage(message, { bootId, seq: 1 }, old), rotating)).toBe(
      "accepted",
    );
    expect(await reason(await encodeMessage(message, { bootId, seq: 1 }, rotating), old)).toBe(
      "unknown_key",
    );
  });

  test("refuses short secrets", async () => {
    await expect(createKeyRing(["short"])).rejects.toThrow(
      "at least 16 bytes: current length is 5",
    );
  });
});

describe("peer codec: news unchanged (kind 4, 'same')", () => {
  const same = {
    kind: "same" as const,
    from: "proxy-a",
    to: "proxy-b",
    incarnation: "0a1b2c3d4e5f",
    digest: "1234abcd",
    same: "0123456789abcdef0123456789abcdef",
    heard: "",
  };
  const sameReason = async (data: Uint8Array) => {
    try {
      await decodeDatagram(data, ring);
      return "accepted";
    } catch (error) {
      return (error as DecodeError).reason;
    }
  };

  test("round-trips for the proxies' transport; whoever reads only messages drops it as bad_type", async () => {
    const data = await encodeSame(same, { bootId, seq: 9 }, ring);
    expect(data[5]).toBe(4);
    expect((await decodeDatagram(data, ring)).message).toEqual(same);
    expect(await reason(data)).toBe("bad_type");
    // Far smaller than the news it stands for.
    const news = await encodeMessage({ ...message, kind: "state", request: undefined }, {
      bootId,
      seq: 1,
    }, ring);
    expect(data.length * 2).toBeLessThan(news.length);
  });

  test("its fields are bounded like any message's, and nothing else rides along", async () => {
    await expect(encodeSame({ ...same, same: "xyz" }, { bootId, seq: 1 }, ring)).rejects
      .toThrow(/same is "xyz"/);
    await expect(encodeSame({ ...same, heard: "nope" }, { bootId, seq: 1 }, ring)).rejects
      .toThrow(/heard is "nope"/);
    const { kind: _, ...body } = same;
    const raw = (extra: Record<string, unknown>) =>
      signFrame(
        "same",
        new TextEncoder().encode(JSON.stringify({ ...body, ...extra })),
        { bootId, seq: 1 },
        ring,
      );
    expect(await sameReason(await raw({}))).toBe("accepted");
    expect(await sameReason(await raw({ register: message.register }))).toBe("malformed");
    expect(await sameReason(await raw({ same: "A".repeat(32) }))).toBe("malformed");
    expect(await sameReason(await raw({ heard: undefined }))).toBe("malformed");
    expect(await sameReason(await raw({ from: "bad name!" }))).toBe("malformed");
  });

  test("a message's `heard` is empty or a news hash", async () => {
    const ok = await encodeMessage({ ...message, heard: same.same }, { bootId, seq: 1 }, ring);
    expect((await decodeMessage(ok, ring)).message.heard).toBe(same.same);
    await expect(encodeMessage({ ...message, heard: "x" }, { bootId, seq: 1 }, ring)).rejects
      .toThrow(/heard is "x"/);
  });
});

describe("checkReplay()", () => {
  const p = (seq: number, _boot = 10, id = "a") => ({ bootId: id, seq });
  function run(seqs: ReturnType<typeof p>[]) {
    let state: ReplayState | undefined;
    return seqs.map((packet) => {
      const r = checkReplay(state, packet);
      if ("state" in r) {
        state = r.state;
        return "ok";
      }
      return r.drop;
    });
  }
  test("accepts increasing sequences and drops repeats", () => {
    expect(run([p(1), p(2), p(2), p(3), p(1)])).toEqual(["ok", "ok", "replayed", "ok", "replayed"]);
  });
  test("tolerates reordering inside the window, once", () => {
    expect(run([p(1), p(5), p(3), p(4), p(3), p(2)])).toEqual([
      "ok",
      "ok",
      "ok",
      "ok",
      "replayed",
      "ok",
    ]);
  });
  test("drops what is older than the window", () => {
    expect(run([p(1), p(WINDOW + 10), p(5)])).toEqual(["ok", "ok", "replayed"]);
  });
  test("each boot has its own window, read without any clock", () => {
    expect(run([p(50, 10, "a"), p(1, 11, "b"), p(51, 10, "a"), p(50, 10, "a"), p(1, 11, "b")]))
      .toEqual(["ok", "ok", "ok", "replayed", "replayed"]);
  });
});
