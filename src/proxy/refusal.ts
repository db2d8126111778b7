/**
 * Why a client was refused, as the `reason` label of the refusal counters says. Every reason a
 * port can give is exported at zero from the start (metrics.ts, `byReason`).
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
