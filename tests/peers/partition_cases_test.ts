/**
 * The four partition cases that split the first version, on real processes: compiled from the
 * same source, each proxy with its own test agents (so each has its own view of the nodes), test
 * backends that greet with their name, and a UDP relay per directed link between proxies that
 * a test cuts one direction at a time. Each watches every proxy while it runs and counts the
 * moments when two proxies route to two different nodes: there must be none.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { greeting, waitFor } from "../../scripts/lab/fixtures.ts";
import { Tier } from "../../scripts/lab/tier.ts";
import { TierNodes } from "../../scripts/lab/tier_nodes.ts";
import { startRelay, type UdpRelay } from "../helpers/udp_relay.ts";

const NAMES = ["q0", "q1", "q2", "qx"];
const BACKENDS = ["db0", "db1", "db2"];
/** Each proxy asks agents of its own. */
let nodes: TierNodes;
let tier: Tier | null = null;
let relays = new Map<string, UdpRelay>();

beforeAll(async () => {
  nodes = await TierNodes.start(BACKENDS, NAMES);
});

afterEach(async () => {
  await tier?.stopAll();
  tier = null;
  for (const r of relays.values()) r.close();
  relays = new Map();
  nodes.reset();
});

afterAll(async () => {
  await nodes.close();
});

const backendsFor = (p: string) => nodes.backendsFor(p);

/** A tier whose every directed peer link goes through a relay of its own. */
async function relayedTier(names: string[], knows?: (self: string, other: string) => boolean) {
  const t = await Tier.create({ names, backendsFor, knows });
  for (const self of names) {
    for (const other of names) {
      if (self === other) continue;
      relays.set(
        `${self}>${other}`,
        await startRelay(t.member(other).peerPort, {
          drop: 0,
          duplicate: 0,
          maxDelayMs: 0,
        }),
      );
    }
  }
  (t.options as { peerAddress?: unknown }).peerAddress = (
    self: { name: string },
    other: { name: string },
  ) => `127.0.0.1:${relays.get(`${self.name}>${other.name}`)!.port}`;
  return t;
}

/** Cuts (or heals) the link from `a` to `b` only. */
function oneWay(a: string, b: string, cut = true) {
  relays.get(`${a}>${b}`)!.blocked = cut;
}

function both(a: string, b: string, cut = true) {
  oneWay(a, b, cut);
  oneWay(b, a, cut);
}

/** Polls every running proxy's route for `ms`; counts samples with two different nodes. */
async function watch(t: Tier, names: string[], ms: number) {
  const seen: Record<string, Set<string | null>> = {};
  for (const n of names) seen[n] = new Set();
  let splits = 0;
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const routes = await Promise.all(
      names.map((n) =>
        t.cluster(n).then((c) => c.activeBackend as string | null).catch(() => null)
      ),
    );
    routes.forEach((r, i) => seen[names[i]].add(r));
    if (new Set(routes.filter((r) => r !== null)).size > 1) splits++;
    await new Promise((r) => setTimeout(r, 25));
  }
  return { splits, seen };
}

describe("partition cases on real processes", () => {
  test("1: two proxies lose each other, then one loses db0: never two nodes", async () => {
    tier = await relayedTier(["q0", "q1"]);
    await tier.startAll();
    await tier.converged("db0");
    both("q0", "q1");
    const during = watch(tier, ["q0", "q1"], 6000);
    await new Promise((r) => setTimeout(r, 1000));
    for (const b of BACKENDS) nodes.set(b, { healthy: b !== "db0" }, ["q1"]);
    const { splits, seen } = await during;
    expect(splits).toBe(0);
    expect([...seen.q1]).not.toContain("db1");
    expect([...seen.q0]).not.toContain("db1");
    // One vote of two is no authority: both refuse once their leases have run out.
    expect(await greeting(tier.member("q0").clientPort)).toContain("no quorum");
    expect(await greeting(tier.member("q1").clientPort)).toContain("no quorum");
  }, 60_000);

  test("2: a proxy cut off from its peers and db0 never moves the tier", async () => {
    tier = await relayedTier(["q0", "q1", "q2"]);
    await tier.startAll();
    await tier.converged("db0");
    both("q0", "q1");
    both("q0", "q2");
    nodes.set("db0", { healthy: false }, ["q0"]);
    const { splits, seen } = await watch(tier, ["q0", "q1", "q2"], 5000);
    expect(splits).toBe(0);
    expect([...seen.q1]).toEqual(["db0"]);
    expect([...seen.q2]).toEqual(["db0"]);
    expect([...seen.q0]).not.toContain("db1");
    both("q0", "q1", false);
    both("q0", "q2", false);
    nodes.set("db0", { healthy: true }, ["q0"]);
    const after = await tier.converged("db0");
    expect(after.active).toBe("db0");
    await waitFor(
      "q0 to route to db0 again",
      async () => (await tier!.cluster("q0")).activeBackend === "db0",
    );
    for (const n of ["q0", "q1", "q2"]) {
      expect(await greeting(tier.member(n).clientPort)).toContain("hello db0");
    }
  }, 60_000);

  test("3: a one-way link (q1 stops hearing q0), then a switchover on q0", async () => {
    tier = await relayedTier(["q0", "q1"]);
    await tier.startAll();
    await tier.converged("db0");
    oneWay("q0", "q1");
    const during = watch(tier, ["q0", "q1"], 6000);
    await new Promise((r) => setTimeout(r, 300));
    const res = await fetch(`http://127.0.0.1:${tier.member("q0").apiPort}/v0/cluster/switchover`, {
      method: "POST",
      headers: {
        Authorization: `Basic ${btoa("admin:lab-secret-pw")}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ backend: "db1", message: "case 3" }),
    });
    expect([200, 409, 503]).toContain(res.status);
    const { splits } = await during;
    expect(splits).toBe(0);
  }, 60_000);

  test(
    "4: a proxy the tier does not list, started after the group moved, never routes",
    async () => {
      tier = await relayedTier(
        ["q0", "q1", "qx"],
        (self, other) => self === "qx" || other !== "qx",
      );
      tier.start("q0");
      tier.start("q1");
      await waitFor("q0 and q1 ready", async () => {
        const a = await tier!.cluster("q0").catch(() => null);
        const b = await tier!.cluster("q1").catch(() => null);
        return a?.ready && b?.ready;
      }, 15_000);
      nodes.set("db0", { healthy: false }, ["q0", "q1"]);
      await waitFor(
        "the tier on db1",
        async () =>
          (await tier!.cluster("q0")).activeBackend === "db1" &&
          (await tier!.cluster("q1")).activeBackend === "db1",
      );
      nodes.set("db0", { healthy: true }, ["q0", "q1"]);
      tier.start("qx");
      await waitFor("qx up", async () => (await tier!.cluster("qx").catch(() => null)) !== null);
      const { splits, seen } = await watch(tier, ["q0", "q1", "qx"], 4000);
      expect(splits).toBe(0);
      expect([...seen.qx]).toEqual([null]);
      expect(await greeting(tier.member("qx").clientPort)).toContain("no quorum");
      expect(await greeting(tier.member("q0").clientPort)).toContain("hello db1");
    },
    60_000,
  );
});
