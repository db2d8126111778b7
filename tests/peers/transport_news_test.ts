/**
 * Compact news over real UDP on loopback: two proxies of this release settle into "same"
 * datagrams while each core still receives every news whole; a proxy of a release before it
 * (compactNews: false) keeps getting whole news and drops only the occasional offer.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { PeerMessage } from "../../src/peers/codec.ts";
import { createKeyRing } from "../../src/peers/keyring.ts";
import { PeerTransport } from "../../src/peers/transport.ts";
import { waitFor } from "../../scripts/lab/fixtures.ts";
import { stateNews } from "./news_fixture.ts";

const ring = await createKeyRing(["correct horse battery staple"]);
const stops: (() => void)[] = [];
afterEach(() => stops.splice(0).forEach((stop) => stop()));

async function party(self: string, compactNews?: boolean) {
  const got: PeerMessage[] = [];
  const transport = new PeerTransport(
    { self, listen: { host: "127.0.0.1", port: 0 }, keys: ring, compactNews },
    (m) => got.push(m),
  );
  await transport.start();
  stops.push(() => transport.stop());
  return { transport, got };
}

const news = (from: string, to: string, epoch = 3) => stateNews(from, to, `life-${from}`, epoch);

function connect(...all: { name: string; transport: PeerTransport }[]) {
  for (const one of all) {
    one.transport.setParties(
      new Map(
        all.filter((o) => o !== one).map((
          o,
        ) => [o.name, { host: "127.0.0.1", port: o.transport.port }]),
      ),
    );
  }
}

/** Both ways, `rounds` times, waiting for each to arrive. */
async function gossip(
  x: { name: string; transport: PeerTransport; got: PeerMessage[] },
  y: { name: string; transport: PeerTransport; got: PeerMessage[] },
  rounds: number,
  epoch = 3,
) {
  for (let i = 0; i < rounds; i++) {
    const [gx, gy] = [x.got.length, y.got.length];
    x.transport.send(news(x.name, y.name, epoch));
    await waitFor("news to " + y.name, () => y.got.length > gy || undefined);
    y.transport.send(news(y.name, x.name, epoch));
    await waitFor("news to " + x.name, () => x.got.length > gx || undefined);
  }
}

describe("compact news over the peer transport", () => {
  test("two proxies send 'same' once settled; each core gets every news whole", async () => {
    const a = { name: "a", ...(await party("a")) };
    const b = { name: "b", ...(await party("b")) };
    connect(a, b);
    await gossip(a, b, 10);
    // The first offer is delivered too (the news it names had just arrived whole).
    for (const m of b.got) expect(m).toEqual(news("a", "b"));
    for (const m of a.got) expect(m).toEqual(news("b", "a"));
    expect(a.transport.counters.sameSent).toBeGreaterThanOrEqual(8);
    expect(b.transport.counters.sameReceived).toBe(a.transport.counters.sameSent);
    expect(a.transport.counters.dropped).toEqual({});
    expect(b.transport.counters.dropped).toEqual({});
    // A change goes whole at once, then "same" again.
    const before = a.transport.counters.sameSent;
    await gossip(a, b, 3, 4);
    expect(b.got.at(-1)!.register.epoch).toBe(4);
    expect(b.got.slice(-3).every((m) => m.register.epoch === 4)).toBe(true);
    expect(a.transport.counters.sameSent - before).toBeGreaterThanOrEqual(1);
    expect(a.transport.parties.get("b")!.news.reads).toBe(true);
  });

  test("a proxy of an earlier release gets whole news; it drops one offer, and sends none", async () => {
    const a = { name: "a", ...(await party("a")) };
    const old = { name: "b", ...(await party("b", false)) };
    connect(a, old);
    await gossip(a, old, 10);
    for (const m of old.got) expect(m).toEqual(news("a", "b"));
    expect(old.got).toHaveLength(10);
    // The offer (one per PROBE_MS) is all it drops, as a release before compact news would.
    expect(old.transport.counters.dropped).toEqual({ bad_type: 1 });
    expect(old.transport.counters.sameSent).toBe(0);
    expect(a.transport.counters.sameSent).toBe(1);
    expect(a.transport.parties.get("b")!.news.reads).toBe(false);
    expect(a.got.every((m) => m.heard === undefined)).toBe(true);
  });
});
