import { describe, expect, test } from "bun:test";
import {
  DecodeError,
  decodeMessage,
  encodeMessage,
  HEADER_BYTES,
  MAX_DATAGRAM_BYTES,
  MessageType,
  type PeerMessage,
} from "../../src/peers/codec.ts";
import { createKeyRing } from "../../src/peers/keyring.ts";
import { checkReplay, type ReplayState, WINDOW } from "../../src/peers/replay.ts";

const message: PeerMessage = {
  type: MessageType.State,
  from: "proxy-a",
  boot: 1_700_000_000_000,
  ready: true,
  register: {
    cluster: "galera",
    epoch: 7,
    proposer: "proxy-b",
    active: "db1",
    reason: "db0 is down for 2 of 3 live proxies",
    time: 123,
  },
  view: {
    db0: { healthy: false, index: 0 },
    db1: { healthy: true, index: 1 },
    db2: { healthy: true, index: null },
  },
};
const bootId = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
const ring = await createKeyRing(["correct horse battery staple"]);

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

  test("a well-signed payload that is not a message is malformed", async () => {
    const bad = { ...message, register: { ...message.register, epoch: -1 } };
    expect(await reason(await encodeMessage(bad, { bootId, seq: 1 }, ring))).toBe("malformed");
    const noView = { ...message, view: [] as unknown as PeerMessage["view"] };
    expect(await reason(await encodeMessage(noView, { bootId, seq: 1 }, ring))).toBe("malformed");
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

describe("checkReplay()", () => {
  const p = (seq: number, boot = 10, id = "a") => ({ boot, bootId: id, seq });
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
  test("a newer boot starts afresh; an older boot is stale", () => {
    expect(run([p(50, 10, "a"), p(1, 11, "b"), p(51, 10, "a")])).toEqual([
      "ok",
      "ok",
      "stale_boot",
    ]);
  });
});
