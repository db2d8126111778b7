/** A token bucket: `tokens` left as of `at` (the caller's monotonic clock, ms). */
export interface Bucket {
  tokens: number;
  at: number;
}

/** What a bucket allows: `rate` per second, at most `burst` at once. */
export interface Rate {
  perSecond: number;
  burst: number;
}

/**
 * Takes one token if there is one. Pure: the caller keeps the bucket and passes its clock, so
 * the receive path (transport.ts) can refuse a flood before spending any cryptography on it.
 */
export function take(bucket: Bucket | undefined, now: number, rate: Rate): {
  bucket: Bucket;
  ok: boolean;
} {
  const last = bucket ?? { tokens: rate.burst, at: now };
  const tokens = Math.min(rate.burst, last.tokens + ((now - last.at) / 1000) * rate.perSecond);
  return tokens >= 1
    ? { bucket: { tokens: tokens - 1, at: now }, ok: true }
    : { bucket: { tokens, at: now }, ok: false };
}

/** The key of the budget that sources without one of their own share. */
export const SHARED_BUDGET = "*";

/**
 * Takes a token from `key`'s bucket in `buckets` (a new one starts full), keeping the bucket
 * there; whether there was one. Callers give each known source its key and the rest
 * SHARED_BUDGET, so a flood from strangers never spends a known source's budget.
 */
export function spend(buckets: Map<string, Bucket>, key: string, now: number, rate: Rate): boolean {
  const taken = take(buckets.get(key), now, rate);
  buckets.set(key, taken.bucket);
  return taken.ok;
}
