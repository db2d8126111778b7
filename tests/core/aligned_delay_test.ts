import { describe, expect, test } from "bun:test";
import { alignedDelay } from "../../src/core/aligned_delay.ts";

describe("alignedDelay", () => {
  test("waits until the next multiple of the period", () => {
    expect(alignedDelay(1_000_030, 200)).toBe(170);
    expect(alignedDelay(1_000_199, 200)).toBe(1);
    expect(1_000_030 + alignedDelay(1_000_030, 200)).toBe(1_000_200);
  });

  test("on a multiple, waits a whole period rather than none", () => {
    expect(alignedDelay(1_000_000, 200)).toBe(200);
  });

  test("a clock before the epoch still lands on a multiple", () => {
    expect(alignedDelay(-30, 200)).toBe(30);
  });

  test("a fractional clock lands on the multiple", () => {
    expect(alignedDelay(1_000_030.5, 200)).toBeCloseTo(169.5, 9);
  });

  test("two hosts started apart fire together", () => {
    const a = 1_765_000_000_013;
    const b = 1_765_000_000_151;
    expect((a + alignedDelay(a, 200)) % 200).toBe(0);
    expect((b + alignedDelay(b, 200)) % 200).toBe(0);
  });

  test("a timer that fired just before a multiple waits for the next one, not for that one", () => {
    // Fired 0.5 ms early for the tick at 1_000_200: the next is 1_000_400.
    expect(1_000_199.5 + alignedDelay(1_000_199.5, 200, 50)).toBe(1_000_400);
    // On time, or a little late: the next multiple as without the margin.
    expect(alignedDelay(1_000_201, 200, 50)).toBe(199);
    expect(alignedDelay(1_000_030, 200, 50)).toBe(170);
    // Late by more than the period less the margin: that multiple is skipped.
    expect(1_000_360 + alignedDelay(1_000_360, 200, 50)).toBe(1_000_600);
  });

  test("a period that is not positive is refused, quoting it", () => {
    expect(() => alignedDelay(5, 0)).toThrow("period is 0");
    expect(() => alignedDelay(5, Number.NaN)).toThrow("period is NaN");
  });

  test("a margin outside [0, period) is refused, quoting it", () => {
    expect(() => alignedDelay(5, 200, 200)).toThrow("atLeastMs is 200");
    expect(() => alignedDelay(5, 200, -1)).toThrow("atLeastMs is -1");
  });
});
