import { describe, expect, test } from "bun:test";
import { Ring } from "../../src/core/ring.ts";

describe("Ring", () => {
  test("keeps the newest `capacity` items, oldest first, and never grows past it", () => {
    const r = new Ring<number>(3);
    expect(r.values()).toEqual([]);
    for (let i = 1; i <= 2; i++) r.push(i);
    expect(r.values()).toEqual([1, 2]);
    for (let i = 3; i <= 10_000; i++) r.push(i);
    expect(r.size).toBe(3);
    expect(r.values()).toEqual([9998, 9999, 10_000]);
  });

  test("a capacity that is not a positive integer is refused, quoting it", () => {
    expect(() => new Ring(0)).toThrow("capacity must be a positive integer: current value is 0");
  });
});
