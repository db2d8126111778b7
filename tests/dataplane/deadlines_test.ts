import { describe, expect, test } from "bun:test";
import { Deadlines } from "../../src/dataplane/deadlines.ts";

/** A seeded generator (mulberry32), so a failing case replays. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("Deadlines: items due at a time, earliest first", () => {
  test("empty: nothing next, nothing fires", () => {
    const d = new Deadlines<string>(() => true);
    expect(d.next()).toBe(Infinity);
    const fired: string[] = [];
    d.fire(1e9, (x) => fired.push(x));
    expect(fired).toEqual([]);
  });

  test("fires what is due by now, in time order, and keeps the rest", () => {
    const d = new Deadlines<string>(() => true);
    d.push(30, "c");
    d.push(10, "a");
    d.push(40, "d");
    d.push(20, "b");
    expect(d.next()).toBe(10);
    const fired: string[] = [];
    d.fire(25, (x) => fired.push(x));
    expect(fired).toEqual(["a", "b"]);
    expect(d.next()).toBe(30);
    expect(d.size).toBe(2);
    d.fire(40, (x) => fired.push(x));
    expect(fired).toEqual(["a", "b", "c", "d"]);
    expect(d.size).toBe(0);
  });

  test("settled entries are skipped: not fired, and dropped from the top by next()", () => {
    const settled = new Set<number>();
    const d = new Deadlines<number>((id) => !settled.has(id));
    for (let id = 1; id <= 5; id++) d.push(id * 10, id);
    settled.add(1).add(2).add(4);
    expect(d.next()).toBe(30);
    expect(d.size).toBe(3);
    const fired: number[] = [];
    d.fire(100, (id) => fired.push(id));
    expect(fired).toEqual([3, 5]);
    settled.add(3).add(5);
    expect(d.next()).toBe(Infinity);
    expect(d.size).toBe(0);
  });

  test("an item moved to a later time fires once, at the later time", () => {
    const due = new Map<string, number>([["x", 10]]);
    const d = new Deadlines<string>((item, at) => due.get(item) === at);
    d.push(10, "x");
    due.set("x", 50);
    d.push(50, "x");
    const fired: string[] = [];
    d.fire(20, (x) => fired.push(x));
    expect(fired).toEqual([]);
    expect(d.next()).toBe(50);
    d.fire(50, (x) => fired.push(x));
    expect(fired).toEqual(["x"]);
  });

  test("against a sorted list, under random pushes, settlements and fires", () => {
    for (let seed = 1; seed <= 50; seed++) {
      const rand = random(seed);
      const settled = new Set<number>();
      const model: { at: number; id: number }[] = [];
      const d = new Deadlines<number>((id) => !settled.has(id));
      let now = 0;
      let nextId = 1;
      for (let step = 0; step < 400; step++) {
        const r = rand();
        if (r < 0.5) {
          // Mostly in time order, as one connect timeout makes them; some not.
          const at = now + (rand() < 0.8 ? 100 : Math.floor(rand() * 200));
          d.push(at, nextId);
          model.push({ at, id: nextId++ });
        } else if (r < 0.7 && model.length > 0) {
          settled.add(model[Math.floor(rand() * model.length)].id);
        } else {
          now += Math.floor(rand() * 60);
          const fired: number[] = [];
          d.fire(now, (id) => fired.push(id));
          const due = model.filter((e) => e.at <= now);
          const expected = due.filter((e) => !settled.has(e.id))
            .sort((a, b) => a.at - b.at);
          expect({ seed, step, fired: fired.map((id) => model.find((e) => e.id === id)!.at) })
            .toEqual({ seed, step, fired: expected.map((e) => e.at) });
          expect(new Set(fired)).toEqual(new Set(expected.map((e) => e.id)));
          for (const e of due) model.splice(model.indexOf(e), 1);
        }
        const live = model.filter((e) => !settled.has(e.id));
        const earliest = live.length === 0 ? Infinity : Math.min(...live.map((e) => e.at));
        expect({ seed, step, next: d.next() }).toEqual({ seed, step, next: earliest });
      }
    }
  });
});
