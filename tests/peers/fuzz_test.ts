/**
 * A bounded fuzz of the peer wire against a running 3-proxy tier: 50,000+ datagrams per run,
 * unsigned (random bytes, a valid header over garbage, truncated and bit-flipped copies of real
 * datagrams) and signed with the tier's own key but hostile (every bound broken, wrong types,
 * unknown fields, another destination, the epoch space claimed, unjustified proposals) as one
 * proxy would send them (p3: a compromised member speaking as itself). No proxy
 * may crash; the register and the routing must stay as they were; every datagram that arrived is
 * counted as dropped or refused. Seeded: GALERAD_FUZZ_SEED=N replays a run.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import dgram from "node:dgram";
import { MAX_EPOCH } from "../../src/core/register.ts";
import { voterDigest } from "../../src/core/voter_set.ts";
import { signFrame } from "../../src/peers/codec.ts";
import { generateIdentity, loadIdentity } from "../../src/peers/identity.ts";
import { createKeyRing } from "../../src/peers/keyring.ts";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { greeting } from "../../scripts/lab/fixtures.ts";
import { SECRET, Tier } from "../../scripts/lab/tier.ts";
import { TierNodes } from "../../scripts/lab/tier_nodes.ts";

const PROXIES = ["p1", "p2", "p3"];
const BACKENDS = ["db0", "db1", "db2"];
const TOTAL = 51_000;
const SEED = Number(process.env.GALERAD_FUZZ_SEED ?? Date.now() % 1_000_000);

let nodes: TierNodes;
beforeAll(async () => {
  nodes = await TierNodes.start(BACKENDS);
});
afterAll(async () => {
  await nodes.close();
});

/** mulberry32: small, seeded, good enough to pick cases. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: T[]) => xs[Math.floor(next() * xs.length)],
  };
}

describe("peer wire fuzz", () => {
  test(`${TOTAL} hostile datagrams change nothing (seed ${SEED})`, async () => {
    const tier = await Tier.create({
      names: PROXIES,
      backendsFor: () => nodes.backendsFor(),
    });
    try {
      await tier.startAll();
      const before = await tier.converged("db0");
      const keys = await createKeyRing([SECRET]);
      const r = prng(SEED);
      const digest = voterDigest("proxies", PROXIES);
      const register = {
        cluster: "galera",
        epoch: before.epoch,
        proposer: "p1",
        incarnation: "feedbeef",
        active: "db0",
        previous: null,
        kind: "initial",
        reason: "fuzz",
        time: 0,
      };
      // The signed-hostile datagrams all come from one holder of the key speaking as itself
      // (p3): with one shared secret, a holder could also speak as the others and so make up
      // a majority of forged votes; only per-proxy key pairs close that (docs/peers.md).
      const body = (to: string) => ({
        from: "p3",
        to,
        incarnation: "fuzzfuzz",
        digest,
        register,
        epochSeen: before.epoch,
        view: { db0: { healthy: true, index: 0 } },
        serving: null,
      });
      // Each mutation breaks one rule; the message is otherwise what a proxy sends.
      const hostile: ((b: Record<string, unknown>) => unknown)[] = [
        (b) => ({ ...b, register: { ...register, epoch: MAX_EPOCH + 1 } }),
        (b) => ({ ...b, register: { ...register, epoch: 2 ** 53 - 1 } }),
        (b) => ({ ...b, epochSeen: 1e308 }),
        (b) => ({ ...b, epochSeen: -1 }),
        (b) => ({ ...b, register: { ...register, reason: "x".repeat(16_000) } }),
        (b) => ({ ...b, register: { ...register, proposer: "y".repeat(300) } }),
        (b) => ({ ...b, register: { ...register, active: 42 } }),
        (b) => ({ ...b, register: { ...register, kind: "coup" } }),
        (b) => ({ ...b, register: null }),
        (b) => ({
          ...b,
          view: Object.fromEntries(
            Array.from({ length: 100 }, (_, i) => [`n${i}`, { healthy: true, index: i }]),
          ),
        }),
        (b) => ({ ...b, view: { db0: { healthy: "yes", index: 0 } } }),
        (b) => ({ ...b, view: { db0: { healthy: true, index: 1e9 } } }),
        (b) => ({ ...b, from: "stranger" }),
        (b) => ({
          ...b,
          follow: { register: { ...register, epoch: MAX_EPOCH, active: "db2" }, majority: true },
        }),
        (b) => ({ ...b, to: "p9" }),
        (b) => ({ ...b, digest: "deadbeef" }),
        (b) => ({ ...b, register: { ...register, cluster: "other" } }),
        (b) => ({ ...b, extra: { deep: { deeper: [1, 2, 3] } } }),
        (b) => ({ ...b, request: { t: "now", serving: null, lease: 2000 } }),
        (b) => ({ ...b, request: { t: 1, serving: null, lease: 1e12 } }),
        (b) => ({ ...b, grant: { t: 1, node: "db2", why: "z".repeat(5000) } }),
        (b) => ({ ...b, api: "javascript:alert(1)" }),
        (b) => ({ ...b, serving: "db9" }),
        // Well formed but unjustified: a failover away from a healthy node, a huge step.
        (b) => ({
          ...b,
          register: {
            ...register,
            epoch: before.epoch + 1,
            active: "db2",
            previous: "db0",
            kind: "failover",
            proposer: "p2",
          },
        }),
        (b) => ({
          ...b,
          register: {
            ...register,
            epoch: MAX_EPOCH,
            active: "db1",
            previous: "db0",
            kind: "failover",
          },
          epochSeen: MAX_EPOCH,
        }),
        () => "not an object",
        () => [1, 2, 3],
      ];
      const signedKinds = ["state", "reply", "request", "same"] as const;
      const real: Uint8Array[] = [];
      for (let i = 0; i < 50; i++) {
        const to = r.pick(PROXIES);
        real.push(
          await signFrame("state", new TextEncoder().encode(JSON.stringify(body(to))), {
            bootId: crypto.getRandomValues(new Uint8Array(8)),
            seq: i + 1,
          }, keys),
        );
      }
      const sock = dgram.createSocket("udp4");
      const ports = PROXIES.map((p) => tier.member(p).peerPort);
      let sent = 0;
      let seq = 1_000_000;
      const boot = crypto.getRandomValues(new Uint8Array(8));
      for (let i = 0; i < TOTAL; i++) {
        const port = ports[i % ports.length];
        const to = PROXIES[i % ports.length];
        let data: Uint8Array;
        const kind = r.int(7);
        if (kind === 0) data = crypto.getRandomValues(new Uint8Array(1 + r.int(1400)));
        else if (kind === 1) {
          data = crypto.getRandomValues(new Uint8Array(28 + r.int(600)));
          data.set([0x47, 0x4c, 0x52, 0x50, 2, 1 + r.int(4)], 0);
        } else if (kind === 6) {
          // A well-formed "news unchanged" naming news nobody sent: dropped as stale_news.
          const hex = (n: number) =>
            Array.from(
              crypto.getRandomValues(new Uint8Array(n)),
              (b) => b.toString(16).padStart(2, "0"),
            )
              .join("");
          const from = r.pick(PROXIES.filter((p) => p !== to));
          const same = { from, to, incarnation: hex(6), digest: hex(4), same: hex(16), heard: "" };
          data = await signFrame("same", new TextEncoder().encode(JSON.stringify(same)), {
            bootId: boot,
            seq: seq++,
          }, keys);
        } else if (kind === 2) {
          const src = r.pick(real);
          data = src.slice(0, r.int(src.length));
        } else if (kind === 3) {
          data = r.pick(real).slice();
          const bit = r.int(data.length * 8);
          data[bit >> 3] ^= 1 << (bit & 7);
        } else {
          const mutated = r.pick(hostile)(body(to));
          const payload = new TextEncoder().encode(JSON.stringify(mutated));
          if (payload.length > 16_000) data = new Uint8Array(17_000); // over the datagram limit
          else {data = await signFrame(r.pick([...signedKinds]), payload, {
              bootId: boot,
              seq: seq++,
            }, keys);}
        }
        await new Promise<void>((res) => sock.send(data, port, "127.0.0.1", () => res()));
        sent++;
        // Paced under the receivers' budget for unknown ports (transport.ts OTHER_RATE, per
        // proxy), so the datagrams reach the decoder rather than the rate limit.
        if (i % 100 === 99) await new Promise((res) => setTimeout(res, 20));
      }
      sock.close();
      await new Promise((res) => setTimeout(res, 1000));
      expect(sent).toBeGreaterThanOrEqual(50_000);
      // Nothing crashed, nothing moved, clients are still served by the same node.
      expect(await tier.converged("db0")).toEqual(before);
      for (const p of PROXIES) {
        expect(await greeting(tier.member(p).clientPort)).toContain("hello db0");
        const peers = await tier.api(p, "/v0/peers");
        const dropped = Object.values(peers.gossip.dropped as Record<string, number>)
          .reduce((a, b) => a + b, 0);
        // Each proxy received a third; unjustified but well-formed proposals are judged, not
        // dropped: they are refused by the rule (the register above did not move).
        expect(dropped).toBeGreaterThan(sent / PROXIES.length * 0.7);
        expect(peers.gossip.dropped.rate_limited ?? 0).toBeLessThan(sent / PROXIES.length * 0.05);
      }
      // The tier still moves afterwards, at a small epoch: the epoch space was not used up.
      nodes.set("db0", { healthy: false });
      const after = await tier.converged("db1", 15_000);
      expect(after.epoch).toBeLessThan(before.epoch + 2000);
    } finally {
      nodes.set("db0", { healthy: true });
      await tier.stopAll();
    }
  }, 180_000);

  test(
    "with per-party keys, the shared secret and one party's key cannot speak for the others",
    async () => {
      const dir = mkdtempSync(path.join(tmpdir(), "galerad-identities-"));
      const pairs = Object.fromEntries(
        await Promise.all(PROXIES.map(async (p) => [p, await generateIdentity()] as const)),
      );
      for (const p of PROXIES) {
        writeFileSync(
          path.join(dir, `${p}.key`),
          pairs[p].privateKey + "\n",
          { mode: 0o600 },
        );
      }
      const list = path.join(dir, "public-keys");
      writeFileSync(list, PROXIES.map((p) => `${p} ${pairs[p].publicKey}`).join("\n") + "\n");
      const tier = await Tier.create({
        names: PROXIES,
        backendsFor: () => nodes.backendsFor(),
        extraFor: (
          p,
        ) => ["--peer-key-file", path.join(dir, `${p}.key`), "--peer-public-keys", list],
      });
      try {
        await tier.startAll();
        const before = await tier.converged("db0");
        // The rogue holds the shared secret and p3's private key; it claims, as p1 and as p2,
        // that a majority holds a register on db2 (what froze the tier without identities).
        const rogue = {
          ...(await createKeyRing([SECRET])),
          identity: await loadIdentity("p3", pairs.p3.privateKey),
        };
        const sock = dgram.createSocket("udp4");
        const target = tier.member("p3").peerPort;
        const register = {
          ...before,
          cluster: "galera",
          epoch: before.epoch + 1,
          active: "db2",
          previous: "db0",
          kind: "failover",
          reason: "forged",
          time: 0,
          incarnation: "x",
        };
        let seq = 1;
        for (const from of ["p1", "p2"]) {
          for (let i = 0; i < 50; i++) {
            const body = {
              from,
              to: "p3",
              incarnation: `rogue${from}`,
              digest: voterDigest("proxies", PROXIES),
              register,
              epochSeen: register.epoch,
              view: { db0: { healthy: false, index: 0 } },
              serving: null,
              follow: { register, majority: true },
            };
            const data = await signFrame("state", new TextEncoder().encode(JSON.stringify(body)), {
              bootId: new Uint8Array(8).fill(7),
              seq: seq++,
            }, rogue);
            await new Promise<void>((res) => sock.send(data, target, "127.0.0.1", () => res()));
          }
        }
        sock.close();
        await new Promise((res) => setTimeout(res, 800));
        expect(await tier.converged("db0")).toEqual(before);
        const dropped = (await tier.api("p3", "/v0/peers")).gossip.dropped;
        expect(dropped.bad_identity).toBe(100);
        expect(await greeting(tier.member("p3").clientPort)).toContain("hello db0");
      } finally {
        await tier.stopAll();
      }
    },
    60_000,
  );
});
