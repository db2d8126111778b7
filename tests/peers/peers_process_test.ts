/**
 * Three `galerad proxy` processes gossiping on loopback in front of test backends. Each proxy
 * has its own agents, so a test can make one proxy's view differ from the others'.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import dgram from "node:dgram";
import { connectClient, greeting, peerJunk, waitFor } from "../../scripts/lab/fixtures.ts";
import { Tier } from "../../scripts/lab/tier.ts";
import { TierNodes } from "../../scripts/lab/tier_nodes.ts";
import { startRelay, type UdpRelay } from "../helpers/udp_relay.ts";

const PROXIES = ["p1", "p2", "p3"];
/** Each proxy asks agents of its own. */
let nodes: TierNodes;
let tier: Tier | null = null;

function setHealth(backend: string, healthy: boolean, only?: string[]) {
  nodes.set(backend, { healthy }, only);
}

beforeAll(async () => {
  nodes = await TierNodes.start(["db0", "db1", "db2"], PROXIES);
});

afterEach(async () => {
  await tier?.stopAll();
  tier = null;
  nodes.reset();
});

afterAll(async () => {
  await nodes.close();
});

const backendsFor = (p: string) => nodes.backendsFor(p);

describe("proxy peers (3 processes)", () => {
  test(
    "all three agree on the lowest index at start, and a simultaneous failover converges on one node",
    async () => {
      tier = await Tier.create({ names: PROXIES, backendsFor });
      await tier.startAll();
      const first = await tier.converged("db0");
      expect(first.epoch).toBeGreaterThanOrEqual(1);
      const held = await connectClient(tier.member("p2").clientPort);
      await held.waitFor("hello db0");

      setHealth("db0", false);
      const after = await tier.converged("db1");
      expect(after.epoch).toBeGreaterThan(first.epoch);
      await held.closed; // the old node's sessions are severed on every proxy
      for (const p of PROXIES) {
        expect(await greeting(tier.member(p).clientPort)).toContain("hello db1");
      }

      // db0 recovers: nobody takes it back.
      setHealth("db0", true);
      await new Promise((r) => setTimeout(r, 500));
      expect((await tier.converged("db1")).epoch).toBe(after.epoch);

      // The gossip's bytes are counted with its datagrams: signed, and each fits one packet.
      const gossip = (await tier.api("p1", "/v0/peers")).gossip;
      expect(gossip.bytesSent).toBeGreaterThan(gossip.sent * 64);
      expect(gossip.bytesSent).toBeLessThan(gossip.sent * 1400);
      expect(gossip.bytesReceived).toBeGreaterThan(gossip.received * 64);
      expect(gossip.bytesReceived).toBeLessThan(gossip.received * 1400);
    },
    60_000,
  );

  test(
    "a proxy alone in seeing the active node down does not move the others, and refuses",
    async () => {
      tier = await Tier.create({ names: PROXIES, backendsFor });
      await tier.startAll();
      const before = await tier.converged("db0");
      setHealth("db0", false, ["p1"]);
      await waitFor(
        "p1 to stop routing",
        async () => (await tier!.cluster("p1")).activeBackend === null,
      );
      const refused = await greeting(tier.member("p1").clientPort);
      expect(refused).toContain("the group is on db0 but this proxy sees it down");
      expect(await greeting(tier.member("p2").clientPort)).toContain("hello db0");
      expect(await greeting(tier.member("p3").clientPort)).toContain("hello db0");
      expect(await tier.converged("db0")).toEqual(before);
      // Its view recovers: it routes again, to the same node.
      setHealth("db0", true, ["p1"]);
      await waitFor(
        "p1 to route again",
        async () => (await tier!.cluster("p1")).activeBackend === "db0",
      );

      // A second proxy sees it down too: now a majority of the voters, and the group moves.
      setHealth("db0", false, ["p1", "p2"]);
      await tier.converged("db1");
    },
    60_000,
  );

  test(
    "a restarted proxy adopts the group's node, never node 0; alone it serves nothing",
    async () => {
      tier = await Tier.create({ names: PROXIES, backendsFor });
      await tier.startAll();
      await tier.converged("db0");
      setHealth("db0", false);
      await tier.converged("db1");
      setHealth("db0", true); // db0 healthy again, with the lowest index
      await tier.stop("p3", "SIGKILL");
      tier.start("p3");
      await waitFor(
        "p3 ready",
        async () => (await tier!.cluster("p3").catch(() => null))?.ready,
        15_000,
      );
      const c = await tier.cluster("p3");
      expect(c.register.active).toBe("db1");
      expect(c.quorum.mode).toBe("proxies");
      expect(await greeting(tier.member("p3").clientPort)).toContain("hello db1");

      // Restarted alone (its peers down): one vote of three is no authority; it routes nowhere.
      await tier.stop("p1", "SIGKILL");
      await tier.stop("p2", "SIGKILL");
      await tier.stop("p3", "SIGKILL");
      tier.start("p3");
      await waitFor("p3 up", async () => (await tier!.cluster("p3").catch(() => null)) !== null);
      await new Promise((r) => setTimeout(r, 1500));
      const alone = await tier.cluster("p3");
      expect(alone.activeBackend).toBeNull();
      expect(await greeting(tier.member("p3").clientPort)).toContain("no quorum");
    },
    60_000,
  );

  test("a sole survivor whose peers are gone stops serving once its lease runs out", async () => {
    tier = await Tier.create({ names: PROXIES, backendsFor });
    await tier.startAll();
    await tier.converged("db0");
    const held = await connectClient(tier.member("p3").clientPort);
    await held.waitFor("hello db0");
    await tier.stop("p1", "SIGKILL");
    await tier.stop("p2", "SIGKILL");
    await held.closed; // severed when the lease ran out
    setHealth("db0", false, ["p3"]);
    await new Promise((r) => setTimeout(r, 1500));
    const c = await tier.cluster("p3");
    expect(c.activeBackend).toBeNull();
    expect(c.register.active).toBe("db0"); // it never moved the group alone
    expect(await greeting(tier.member("p3").clientPort)).toContain("no quorum");
  }, 60_000);

  test("a lossy link (drops, duplicates, reordering) still converges", async () => {
    const relays: UdpRelay[] = [];
    tier = await Tier.create({ names: PROXIES, backendsFor });
    // Every datagram to a proxy goes through that proxy's relay.
    const relayPort = new Map<string, number>();
    for (const m of tier.members.values()) {
      const relay = await startRelay(m.peerPort, { drop: 0.3, duplicate: 0.2, maxDelayMs: 40 });
      relays.push(relay);
      relayPort.set(m.name, relay.port);
    }
    const lossy = tier;
    (lossy.options as { peerAddress?: unknown }).peerAddress = (
      _: unknown,
      other: { name: string },
    ) => `127.0.0.1:${relayPort.get(other.name)}`;
    try {
      await lossy.startAll();
      await lossy.converged("db0");
      setHealth("db0", false);
      await lossy.converged("db1", 15_000);
      setHealth("db1", false);
      await lossy.converged("db2", 15_000);
      expect(relays.reduce((n, r) => n + r.dropped, 0)).toBeGreaterThan(0);
    } finally {
      for (const r of relays) r.close();
    }
  }, 60_000);

  test("a proxy whose peer list differs is not counted, and says why", async () => {
    tier = await Tier.create({
      names: PROXIES,
      backendsFor,
      knows: (self, other) =>
        !((self === "p1" && other === "p3") || (self === "p3" && other === "p1")),
    });
    for (const name of PROXIES) tier.start(name);
    await waitFor("p2 to see a voter-set mismatch", async () => {
      const peers = (await tier!.api("p2", "/v0/peers").catch(() => null))?.peers ?? [];
      return peers.some((p: { voterSetMismatch: string | null }) => p.voterSetMismatch !== null);
    }, 15_000);
    // p1 and p3 each count a set of two that the other side does not share: nobody has a
    // majority of the same set, so nobody routes; the operator sees why.
    await new Promise((r) => setTimeout(r, 1500));
    for (const name of PROXIES) expect((await tier.cluster(name)).activeBackend).toBeNull();
    const metrics = await fetch(`http://127.0.0.1:${tier.member("p2").apiPort}/metrics`, {
      headers: { Authorization: `Basic ${btoa("admin:lab-secret-pw")}` },
    }).then((r) => r.text());
    expect(metrics).toMatch(/galerad_peers_voter_set_mismatch 2/);
  }, 60_000);

  test("garbage, forged and replayed datagrams from a stranger change nothing", async () => {
    tier = await Tier.create({ names: PROXIES, backendsFor });
    // Datagrams to p1 pass through a recording relay, so real ones can be replayed later.
    const recorder = await startRelay(tier.member("p1").peerPort, {
      drop: 0,
      duplicate: 0,
      maxDelayMs: 0,
    });
    (tier.options as { peerAddress?: unknown }).peerAddress = (
      _: unknown,
      other: { name: string; peerPort: number },
    ) => `127.0.0.1:${other.name === "p1" ? recorder.port : other.peerPort}`;
    await tier.startAll();
    const before = await tier.converged("db0");
    const target = tier.member("p1").peerPort;
    const sock = dgram.createSocket("udp4");
    const send = (data: Uint8Array) =>
      new Promise<void>((r) => sock.send(data, target, "127.0.0.1", () => r()));
    for (let i = 0; i < 200; i++) {
      await send(crypto.getRandomValues(new Uint8Array(1 + Math.floor(Math.random() * 1500))));
    }
    await send(new TextEncoder().encode("GLRP" + "x".repeat(100)));
    await send(new Uint8Array(20_000)); // over the 16 KiB limit
    const { encodeMessage } = await import("../../src/peers/codec.ts");
    const { createKeyRing } = await import("../../src/peers/keyring.ts");
    const wrongKey = await createKeyRing(["not the shared secret at all"]);
    const forged = await encodeMessage(
      {
        kind: "state",
        from: "p2",
        to: "p1",
        incarnation: "f0f0f0f0",
        digest: "00000000",
        register: {
          cluster: "galera",
          epoch: 999,
          proposer: "zz",
          incarnation: "x",
          active: "db2",
          previous: "db0",
          kind: "failover",
          reason: "forged",
          time: 0,
        },
        epochSeen: 999,
        view: { db0: { healthy: false, index: 0 } },
        serving: null,
      },
      { bootId: new Uint8Array(8), seq: 1 },
      wrongKey,
    );
    await send(forged);
    // Datagrams p1 has already received (the relay passes them on at once) are replays now.
    await waitFor("traffic recorded after p1 was up", () => recorder.recorded.length >= 60);
    const captured = recorder.recorded.slice(-40, -10);
    for (const datagram of captured) await send(datagram);
    sock.close();
    // The relay stays up until the checks are done: every peer datagram to p1 passes through it,
    // and without it p1 is cut off and its lease lapses within a second, whatever the stranger sent.
    try {
      await new Promise((r) => setTimeout(r, 500));
      expect(await tier.converged("db0")).toEqual(before);
      const dropped = (await tier.api("p1", "/v0/peers")).gossip.dropped;
      expect(dropped.bad_magic + dropped.truncated + (dropped.oversized ?? 0))
        .toBeGreaterThanOrEqual(200);
      expect(dropped.unknown_key).toBe(1);
      expect(dropped.replayed).toBe(captured.length);
      expect(await greeting(tier.member("p1").clientPort)).toContain("hello db0");
    } finally {
      recorder.close();
    }
  }, 60_000);

  test(
    "a flood from another port of a party's host is dropped in the kernel until it stops",
    async () => {
      tier = await Tier.create({ names: PROXIES, backendsFor });
      await tier.startAll();
      const before = await tier.converged("db0");
      const peers = () => tier!.api("p1", "/v0/peers");
      expect((await peers()).kernelFilter).toBe("hosts");
      const target = tier.member("p1").peerPort;
      const sock = dgram.createSocket("udp4");
      const junk = peerJunk();
      let flooding = true;
      const flood = (async () => {
        while (flooding) {
          for (let i = 0; i < 500; i++) sock.send(junk, target, "127.0.0.1");
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      try {
        await waitFor(
          "the kernel filter to tighten",
          async () => (await peers()).kernelFilter === "addresses",
        );
        await waitFor(
          "the kernel to drop the flood",
          async () => ((await peers()).gossip.dropped.kernel ?? 0) > 10_000,
        );
        const during = await peers();
        expect(during.peers.every((p: { live: boolean }) => p.live)).toBe(true);
        expect(await tier.converged("db0")).toEqual(before);
        expect(await greeting(tier.member("p1").clientPort)).toContain("hello db0");
      } finally {
        flooding = false;
        await flood;
        sock.close();
      }
      await waitFor(
        "the kernel filter to loosen",
        async () => (await peers()).kernelFilter === "hosts",
        20_000,
      );
      expect(await tier.converged("db0")).toEqual(before);
    },
    60_000,
  );
});
