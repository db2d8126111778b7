/**
 * Why a client was refused, as the `reason` label of the refusal counters says. Every reason a
 * port can give is exported at zero from the start: Prometheus's `increase()` and `rate()` see
 * nothing of a series whose first sample is already above zero, so an alert on refusals would
 * miss the first ones of a reason.
 */

/** Reasons the writer port refuses for. */
export const WRITER_REFUSALS = [
  "no_active_node",
  "no_quorum",
  "minority",
  "starting",
  "waiting",
  "active_changed",
  "backend_unreachable",
  "fd_limit",
  "shutdown",
  "traffic_disabled",
] as const;

/** Reasons the reader port refuses for. */
export const READER_REFUSALS = [
  "no_reader",
  "no_active_node",
  "reader_changed",
  "backend_unreachable",
  "fd_limit",
  "shutdown",
  "traffic_disabled",
] as const;

export type RefusalReason =
  | (typeof WRITER_REFUSALS)[number]
  | (typeof READER_REFUSALS)[number];

/** A refused client's answer: the reason it is counted under, and the message it reads. */
export interface Refusal {
  reason: RefusalReason;
  message: string;
  code?: number;
}

/** `counted` with every reason of `reasons` present, those never seen at zero. */
export function refusalCounts(
  reasons: readonly RefusalReason[],
  counted: Partial<Record<RefusalReason, number>>,
): [{ reason: string }, number][] {
  const all = new Set<RefusalReason>([...reasons, ...Object.keys(counted) as RefusalReason[]]);
  return [...all].map((reason) => [{ reason }, counted[reason] ?? 0]);
}
