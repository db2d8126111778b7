/**
 * How long from `nowMs` (a wall clock) until its next multiple of `periodMs` that is more than
 * `atLeastMs` away (at most a period further). Timers set this way fire in the same moment on
 * every host whose clock agrees, whenever each started, and do not drift from it; `atLeastMs`
 * keeps a timer that fires a little early, or a clock slewed back, from firing twice in a row.
 */
export function alignedDelay(nowMs: number, periodMs: number, atLeastMs = 0): number {
  if (!(periodMs > 0) || !Number.isFinite(periodMs)) {
    throw new RangeError(`alignedDelay: period is ${periodMs}: expected a positive number of ms`);
  }
  if (!(atLeastMs >= 0 && atLeastMs < periodMs)) {
    throw new RangeError(
      `alignedDelay: atLeastMs is ${atLeastMs}: expected 0 or more, below the period ${periodMs}`,
    );
  }
  const from = nowMs + atLeastMs;
  const phase = ((from % periodMs) + periodMs) % periodMs;
  return periodMs - phase + atLeastMs;
}
