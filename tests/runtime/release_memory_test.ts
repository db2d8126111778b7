import { describe, expect, test } from "bun:test";
import { releaseAfterStart, releaseMemory } from "../../src/runtime/release_memory.ts";

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
});
