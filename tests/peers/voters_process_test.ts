/**
 * `--voters`: five `galerad proxy` processes of which three vote. The two that do not vote hold
 * leases like the others; the tier lives while a majority of the voters does, whatever the
 * number of proxies.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { connectClient, greeting, waitFor } from "../../scripts/lab/fixtures.ts";
import { Tier } from "../../scripts/lab/tier.ts";
import { TierNodes } from "../../scripts/lab/tier_nodes.ts";

const PROXIES = ["p1", "p2", "p3", "p4", "p5"];
const VOTERS = ["p1", "p2", "p3"];
let nodes: TierNodes | null = null;
let tier: Tier | null = null;

afterAll(async () => {
  await tier?.stopAll();
  await nodes?.close();
});

describe("--voters: three of five proxies vote", () => {
  test(
    "the others serve under the voters' leases; losing voters, not proxies, ends the quorum",
    async () => {
      const db = (nodes = await TierNodes.start(["db0", "db1"]));
      tier = await Tier.create({
        names: PROXIES,
        backendsFor: () => db.backendsFor(),
        extra: ["--quorum", "proxies", "--voters", VOTERS.join(",")],
      });
      await tier.startAll();
      await tier.converged("db0");
      for (const p of PROXIES) {
        const c = await tier.cluster(p);
        expect(c.quorum.voters).toEqual(VOTERS);
        expect(c.quorum.needed).toBe(2);
      }
      const peers = await tier.api("p4", "/v0/peers");
      const voting = (name: string) =>
        peers.peers.find((p: { name: string }) => p.name === name)?.voter;
      expect([voting("p1"), voting("p5")]).toEqual([true, false]);
      expect(await greeting(tier.member("p4").clientPort)).toContain("hello db0");

      // The two that do not vote send each other news; once each knows the other reads compact
      // news, unchanged news goes as "same", and each still hears the other.
      await waitFor("p4 and p5 exchanging 'same' news", async () => {
        const [a, b] = await Promise.all([
          tier!.api("p4", "/v0/peers"),
          tier!.api("p5", "/v0/peers"),
        ]);
        const link = (v: typeof a, name: string) =>
          v.peers.find((p: { name: string }) => p.name === name);
        return link(a, "p5")?.compactNews && link(b, "p4")?.compactNews &&
          link(a, "p5")?.live && a.gossip.sameReceived > 0 && b.gossip.sameReceived > 0;
      }, 10_000);
      const news = await tier.api("p4", "/v0/peers");
      expect(news.gossip.dropped.stale_news ?? 0).toBeLessThan(news.gossip.sameReceived);

      // One voter and one holder die: two of three voters are left, and a failover still goes
      // through on every proxy that is left.
      await tier.stop("p1", "SIGKILL");
      await tier.stop("p5", "SIGKILL");
      const held = await connectClient(tier.member("p4").clientPort);
      await held.waitFor("hello db0");
      db.set("db0", { healthy: false });
      await tier.converged("db1", 15_000);
      await held.closed;
      await waitFor("every live proxy routing to db1", async () => {
        for (const p of ["p2", "p3", "p4"]) {
          if ((await tier!.cluster(p)).activeBackend !== "db1") return false;
        }
        return true;
      }, 15_000);
      expect(await greeting(tier.member("p4").clientPort)).toContain("hello db1");

      // A second voter dies: p3 and p4 are two of four live proxies, but one of three voters.
      await tier.stop("p2", "SIGKILL");
      await waitFor("p4 stops serving once its lease runs out", async () => {
        return (await tier!.cluster("p4")).activeBackend === null;
      }, 10_000);
      expect(await greeting(tier.member("p4").clientPort)).toContain("no quorum");
    },
    90_000,
  );
});
