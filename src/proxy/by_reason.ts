/**
 * A counter by reason with every reason of `reasons` present, those never counted at zero:
 * Prometheus's `increase()` and `rate()` see nothing of a series whose first sample is already
 * above zero, so an alert on a reason would otherwise miss its first occurrences.
 */
export function byReason<R extends string>(
  reasons: readonly R[],
  counted: Partial<Record<R, number>>,
): [{ reason: string }, number][] {
  const all = new Set<R>([...reasons, ...Object.keys(counted) as R[]]);
  return [...all].map((reason) => [{ reason }, counted[reason] ?? 0]);
}
