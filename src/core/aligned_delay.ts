/**
 * How long from `nowMs` (a wall clock) until its next multiple of `periodMs`: more than 0, at
 * most one period. Timers set this way fire in the same moment on every host whose clock
 * agrees, whenever each started, and do not drift from it.
 */
export function alignedDelay(nowMs: number, periodMs: number): number {
  if (!(periodMs > 0) || !Number.isFinite(periodMs)) {
    throw new RangeError(`alignedDelay: period is ${periodMs}: expected a positive number of ms`);
  }
  const phase = ((nowMs % periodMs) + periodMs) % periodMs;
  return periodMs - phase;
}
