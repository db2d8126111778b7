import { describe, expect, test } from "bun:test";
import {
  DecodeError,
  decodeMessage,
  encodeMessage,
  type PeerMessage,
  signFrame,
} from "../../src/peers/codec.ts";
import { generateIdentity, loadIdentity, loadPublicKeys } from "../../src/peers/identity.ts";
import { createKeyRing, type KeyRing } from "../../src/peers/keyring.ts";

const message: PeerMessage = {
  kind: "state",
  from: "p1",
  to: "p2",
  incarnation: "0a1b2c3d",
  digest: "1234abcd",
  register: {
    cluster: "galera",
    epoch: 7,
    proposer: "p1",
    incarnation: "99aa",
    active: "db1",
    previous: "db0",
    kind: "failover",
    reason: "db0 is down here",
    time: 123,
  },
  epochSeen: 7,
  view: { db0: { healthy: false, index: 0 }, db1: { healthy: true, index: 1 } },
  serving: "db1",
};
const envelope = { bootId: new Uint8Array(8), seq: 1 };

const pairs = {
  p1: await generateIdentity(),
  p2: await generateIdentity(),
  p3: await generateIdentity(),
};
const publicKeys = await loadPublicKeys(
  Object.entries(pairs).map(([name, p]) => `${name} ${p.publicKey}`).join("\n"),
);
const shared = await createKeyRing(["the shared secret of the tier"]);
const ringOf = async (name: keyof typeof pairs): Promise<KeyRing> => ({
  ...shared,
  identity: await loadIdentity(name, pairs[name].privateKey),
  publicKeys,
});
const reason = async (p: Promise<unknown>) => {
  try {
    await p;
    return "accepted";
  } catch (error) {
    return error instanceof DecodeError ? `${error.reason}: ${error.message}` : String(error);
  }
};

describe("per-party identities", () => {
  test("a message signed by its sender is accepted", async () => {
    const data = await encodeMessage(message, envelope, await ringOf("p1"));
    const { message: got } = await decodeMessage(data, await ringOf("p2"));
    expect(got).toEqual(message);
  });

  test("the shared secret and p3's own key cannot speak as p1", async () => {
    const p3 = await ringOf("p3");
    await expect(encodeMessage(message, envelope, p3)).rejects.toThrow(
      "from p1, but the key is p3's",
    );
    // Framed by hand as a rogue would: p3's signature on a message claiming to be from p1.
    const { kind, ...body } = message;
    const forged = await signFrame(
      kind,
      new TextEncoder().encode(JSON.stringify(body)),
      envelope,
      p3,
    );
    expect(await reason(decodeMessage(forged, await ringOf("p2")))).toBe(
      "bad_identity: not signed by p1's key",
    );
    // Only the shared secret (no sender signature) is not enough once keys are required.
    const unsigned = await encodeMessage(message, envelope, shared);
    expect(await reason(decodeMessage(unsigned, await ringOf("p2")))).toBe(
      "bad_identity: not signed by its sender, and sender keys are required",
    );
    const stranger = await encodeMessage({ ...message, from: "p9" }, envelope, shared);
    expect(await reason(decodeMessage(stranger, await ringOf("p2")))).toContain("bad_identity");
  });

  test("a party without public keys still reads signed messages (a rolling rollout)", async () => {
    const data = await encodeMessage(message, envelope, await ringOf("p1"));
    expect((await decodeMessage(data, shared)).message.from).toBe("p1");
  });

  test("bad key files say what is wrong", async () => {
    await expect(loadIdentity("p1", "not a key")).rejects.toThrow("not an Ed25519 private key");
    await expect(loadPublicKeys("p1 AAAA")).rejects.toThrow(
      'line 1 ("p1 AAAA"): an Ed25519 public key is 32 bytes, not 3',
    );
    await expect(loadPublicKeys(`p1 ${pairs.p1.publicKey}\np1 ${pairs.p2.publicKey}`)).rejects
      .toThrow("p1 is listed twice");
    await expect(loadPublicKeys("# nothing\n")).rejects.toThrow("no public key in it");
  });
});
