import { describe, expect, test } from "bun:test";
import process from "node:process";
import type { PeerMessage } from "../../src/peers/codec.ts";
import { random } from "../core/agreement_sim.ts";
import { stateNews } from "./news_fixture.ts";
import {
  incoming,
  incomingSame,
  NEW_LINK,
  newsBody,
  type NewsLink,
  outgoing,
  PROBE_MS,
} from "../../src/peers/compact_news.ts";

const news = stateNews;

/** Two proxies' links to each other, and the wire between them (a datagram can be lost). */
function pair() {
  const links: Record<string, NewsLink> = { a: NEW_LINK, b: NEW_LINK };
  let now = 0;
  /** `from` sends `message`; returns what the other side's core gets (null: nothing). */
  const send = (from: "a" | "b", message: PeerMessage, lost = false) => {
    const to = from === "a" ? "b" : "a";
    const out = outgoing(links[from], message, now);
    links[from] = out.link;
    const datagrams = out.send === "same"
      ? [out.same]
      : [out.message, ...(out.probe ? [out.probe] : [])];
    if (lost) return { kinds: datagrams.map((d) => d.kind), got: [] };
    // Through JSON, as the wire carries it.
    const got: (PeerMessage | null)[] = [];
    for (const d of datagrams.map((d) => ({ kind: d.kind, ...JSON.parse(JSON.stringify(d)) }))) {
      const step = d.kind === "same" ? incomingSame(links[to], d) : incoming(links[to], d);
      links[to] = step.link;
      got.push(step.message);
    }
    return { kinds: datagrams.map((d) => d.kind), got };
  };
  return { links, send, tick: (ms: number) => (now += ms) };
}

describe("compact news: unchanged news goes as a hash, and the core sees the same messages", () => {
  test("two proxies learn each other reads it, then send 'same', delivered as the very news", () => {
    const w = pair();
    const a = news("a", "b", "ia");
    const b = news("b", "a", "ib");
    // Neither knows the other reads it; news from a party makes it worth an offer.
    expect(w.send("a", a).kinds).toEqual(["state"]);
    expect(w.send("b", b).kinds).toEqual(["state", "same"]);
    expect(w.links.a.reads).toBe(true);
    // b's offer said it holds a's news; a's next says it holds b's.
    const sent = w.send("a", a);
    expect(sent.kinds).toEqual(["same"]);
    expect(w.send("b", b).kinds).toEqual(["same"]);
    const { heard: _, ...plain } = a;
    expect(sent.got).toEqual([plain]);
    expect(newsBody(sent.got[0]!).hash).toBe(newsBody(a).hash);
  });

  test("changed news goes whole, and again until the party says it holds it", () => {
    const w = pair();
    const b = news("b", "a", "ib");
    w.send("a", news("a", "b", "ia"));
    w.send("b", b);
    w.send("a", news("a", "b", "ia"));
    w.send("b", b);
    expect(w.send("a", news("a", "b", "ia")).kinds).toEqual(["same"]);
    const changed = news("a", "b", "ia", 4);
    expect(w.send("a", changed, true).kinds).toEqual(["state"]); // lost
    expect(w.send("b", b).kinds).toEqual(["same"]); // says it holds epoch 3's
    expect(w.send("a", changed).kinds).toEqual(["state"]);
    expect(w.send("b", b).kinds).toEqual(["same"]);
    const next = w.send("a", changed);
    expect(next.kinds).toEqual(["same"]);
    expect((next.got[0] as PeerMessage).register.epoch).toBe(4);
  });

  test("a 'same' from a life not heard whole (a forgery) changes nothing", () => {
    const link: NewsLink = {
      ...NEW_LINK,
      incarnation: "ia",
      reads: true,
      holds: "h",
      got: newsBody(news("a", "b", "ia")),
    };
    const forged = {
      kind: "same" as const,
      from: "a",
      to: "b",
      incarnation: "other-life",
      digest: "abcd1234",
      same: newsBody(news("a", "b", "other-life")).hash,
      heard: "",
    };
    expect(incomingSame(link, forged)).toEqual({ link, message: null });
  });

  test("a 'same' naming news not held is not delivered", () => {
    const link: NewsLink = { ...NEW_LINK, incarnation: "ia", got: newsBody(news("a", "b", "ia")) };
    const same = {
      kind: "same" as const,
      from: "a",
      to: "b",
      incarnation: "ia",
      digest: "abcd1234",
      same: newsBody(news("a", "b", "ia", 9)).hash,
      heard: "",
    };
    const step = incomingSame(link, same);
    expect(step.message).toBeNull();
    expect(step.link.reads).toBe(true);
  });

  test("a restarted party forgets what it held and read: news goes whole", () => {
    const w = pair();
    const a = news("a", "b", "ia");
    w.send("a", a);
    w.send("b", news("b", "a", "ib"));
    w.send("a", a);
    w.send("b", news("b", "a", "ib"));
    expect(w.send("a", a).kinds).toEqual(["same"]);
    // b restarts: its first news is whole and carries no `heard`.
    w.links.b = NEW_LINK;
    w.send("b", news("b", "a", "ib2"));
    expect(w.links.a.reads).toBe(false);
    expect(w.send("a", a).kinds[0]).toBe("state");
  });

  test("requests and replies are never 'same'; they say what is held only to a party that reads it", () => {
    const request: PeerMessage = {
      ...news("a", "b", "ia"),
      kind: "request",
      request: { t: 1, serving: null, lease: 2000 },
    };
    const plain = outgoing(NEW_LINK, request, 0);
    expect(plain.send === "whole" && plain.message.heard).toBeUndefined();
    const reads: NewsLink = {
      ...NEW_LINK,
      reads: true,
      holds: newsBody(request).hash,
      got: newsBody(news("b", "a", "ib")),
    };
    const out = outgoing(reads, request, 0);
    expect(out.send).toBe("whole");
    expect(out.send === "whole" && out.message.heard).toBe(newsBody(news("b", "a", "ib")).hash);
  });

  test("a party that never sent news (an agent) is never offered one; a proxy once per PROBE_MS", () => {
    const a = news("a", "b", "ia");
    let link = NEW_LINK;
    for (let t = 0; t < 3 * PROBE_MS; t += 500) {
      const out = outgoing(link, a, t);
      expect(out.send === "whole" && out.probe).toBeNull();
      link = out.link;
    }
    link = incoming(link, news("b", "a", "ib")).link;
    const offers: number[] = [];
    for (let t = 0; t < 3 * PROBE_MS; t += 500) {
      const out = outgoing(link, a, t);
      if (out.send === "whole" && out.probe) offers.push(t);
      link = out.link;
    }
    expect(offers).toEqual([0, PROBE_MS, 2 * PROBE_MS]);
  });
});

describe("compact news under loss, reordering, changes and restarts (seeded)", () => {
  const SEEDS = Number(process.env.COMPACT_NEWS_SEEDS ?? 300);

  /**
   * Invariant checked after every delivery: what a core receives is exactly a message the
   * sender's core asked to send, and for a "same" the one asked at that very send (never an
   * older news of the sender's). Also: once the wire is clean and nothing changes, "same" wins
   * within an offer's period (PROBE_MS: an offer can be lost too).
   */
  function run(seed: number): string | null {
    const r = random(seed);
    const life = { a: 0, b: 0 };
    const epoch = { a: 1, b: 1 };
    const links: Record<"a" | "b", NewsLink> = { a: NEW_LINK, b: NEW_LINK };
    type Flight = { to: "a" | "b"; datagram: PeerMessage | SameNewsT; meant: PeerMessage };
    let wire: Flight[] = [];
    let now = 0;
    const current = (from: "a" | "b") =>
      news(from, from === "a" ? "b" : "a", `${from}${life[from]}`, epoch[from]);
    for (let step = 0; step < 800; step++) {
      const clean = step >= 300;
      now += 100;
      const x = r() < 0.5 ? "a" : "b";
      const dice = r();
      if (!clean && dice < 0.02) {
        life[x]++;
        links[x] = NEW_LINK;
      } else if (!clean && dice < 0.1) epoch[x]++;
      const meant = current(x);
      const out = outgoing(links[x], meant, now);
      links[x] = out.link;
      const datagrams = out.send === "same"
        ? [out.same]
        : [out.message, ...(out.probe ? [out.probe] : [])];
      for (const d of datagrams) {
        if (!clean && r() < 0.25) continue; // lost
        wire.push({ to: x === "a" ? "b" : "a", datagram: JSON.parse(JSON.stringify(d)), meant });
      }
      // Deliver some of what is in flight, in any order (all of it once the wire is clean).
      const keep: Flight[] = [];
      for (const f of wire) {
        if (!clean && r() < 0.4) {
          keep.push(f);
          continue;
        }
        const d = f.datagram;
        const got = d.kind === "same"
          ? incomingSame(links[f.to], d as SameNewsT)
          : incoming(links[f.to], d as PeerMessage);
        links[f.to] = got.link;
        if (got.message === null) continue;
        const { heard: _, ...plain } = f.meant;
        if (JSON.stringify(got.message) !== JSON.stringify(plain)) {
          return `seed ${seed} step ${step}: delivered ${JSON.stringify(got.message)} for ${
            JSON.stringify(plain)
          }`;
        }
      }
      wire = keep;
      if (step >= 790 && out.send !== "same") {
        return `seed ${seed}: still whole on a clean, settled wire`;
      }
    }
    return null;
  }

  test(`${SEEDS} seeds: every delivery is the news meant at its send; a clean wire settles on "same"`, () => {
    for (let seed = 1; seed <= SEEDS; seed++) expect(run(seed)).toBeNull();
  });
});

type SameNewsT = Extract<ReturnType<typeof outgoing>, { send: "same" }>["same"];
