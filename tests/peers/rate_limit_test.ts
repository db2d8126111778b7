import { describe, expect, test } from "bun:test";
import { type Bucket, SHARED_BUDGET, spend, take } from "../../src/peers/rate_limit.ts";

describe("take()", () => {
  test("a burst, then the rate", () => {
    const rate = { perSecond: 10, burst: 3 };
    let bucket: Bucket | undefined;
    const oks: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      const r = take(bucket, 0, rate);
      bucket = r.bucket;
      oks.push(r.ok);
    }
    expect(oks).toEqual([true, true, true, false, false]);
    expect(take(bucket, 99, rate).ok).toBe(false);
    expect(take(bucket, 100, rate).ok).toBe(true);
  });

  test("never more than the burst after a long silence", () => {
    const rate = { perSecond: 1000, burst: 2 };
    let { bucket } = take(undefined, 0, rate);
    ({ bucket } = take(bucket, 1e9, rate));
    expect(bucket.tokens).toBe(1);
  });
});

describe("spend()", () => {
  test("keeps each key's bucket: the shared one running dry leaves a source's own untouched", () => {
    const rate = { perSecond: 1, burst: 2 };
    const buckets = new Map<string, Bucket>();
    expect([1, 2, 3].map(() => spend(buckets, SHARED_BUDGET, 0, rate))).toEqual([
      true,
      true,
      false,
    ]);
    expect(spend(buckets, "10.0.0.1:4567", 0, rate)).toBe(true);
    expect(buckets.get(SHARED_BUDGET)!.tokens).toBeLessThan(1);
    expect(buckets.get("10.0.0.1:4567")!.tokens).toBe(1);
  });
});
