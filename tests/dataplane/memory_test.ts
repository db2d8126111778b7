import { describe, expect, test } from "bun:test";
import { releaseMemory } from "#thread";
import { QuietCollector, releaseAfterStart } from "../../src/dataplane/memory.ts";

describe("start-up memory release", () => {
  test("runs the release once, after the delay", async () => {
    let calls = 0;
    releaseAfterStart(() => calls++, 30);
    expect(calls).toBe(0);
    await Bun.sleep(120);
    expect(calls).toBe(1);
  });

  test("Bun's heap is trimmed: a released heap holds less than before", () => {
    // Garbage a collection frees and compiled code Bun.shrink drops.
    let keep = 0;
    for (let i = 0; i < 200_000; i++) keep += JSON.stringify({ i, s: `x${i}` }).length;
    expect(keep).toBeGreaterThan(0);
    const { heapSize } = require("bun:jsc") as { heapSize(): number };
    const before = heapSize();
    releaseMemory();
    expect(heapSize()).toBeLessThan(before);
  });

  test("collects once a burst of sessions is over (none for the quiet time), once per burst", async () => {
    let calls = 0;
    const collector = new QuietCollector(() => calls++, 300);
    // A burst of sessions 20 ms apart for ~400 ms: no collection while it lasts.
    for (let i = 0; i < 20; i++) {
      collector.note();
      await Bun.sleep(20);
    }
    expect(calls).toBe(0);
    await Bun.sleep(600);
    expect(calls).toBe(1);
    // Quiet stays quiet: nothing more without new sessions; a new burst, one more.
    await Bun.sleep(600);
    expect(calls).toBe(1);
    collector.note();
    collector.note();
    await Bun.sleep(600);
    expect(calls).toBe(2);
  });
});
