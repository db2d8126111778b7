/**
 * When the kernel's source filter (source_filter.ts) tightens. Normally it lets through every
 * port of a party's host, so a party behind a middlebox that rewrites ports (a NAT, a relay)
 * still reaches the transport's shared budget. Once that budget refuses a flood, only parties'
 * exact addresses pass, until the kernel has dropped no flood for `holdMs`: reading and
 * refusing each datagram in the process would otherwise take the main thread from routing.
 * Pure: the transport passes its clock and the kernel's drop count.
 */

export interface FloodGuard {
  strict: boolean;
  /** Refusals by the shared budget in the window that began at `windowAt`. */
  refused: number;
  windowAt: number;
  /** While strict: when the kernel last dropped at a flood's rate. */
  floodAt: number;
  /** The kernel's drop count at the last tick, and when. */
  drops: number;
  tickAt: number;
}

export interface FloodGuardConfig {
  /** Refusals (or kernel drops) per second that count as a flood. */
  floodPerSecond: number;
  /** How long no flood must be seen before every port of a party's host passes again. */
  holdMs: number;
}

export const FLOOD_GUARD: FloodGuardConfig = { floodPerSecond: 2000, holdMs: 10_000 };

export function floodGuard(now: number, drops: number): FloodGuard {
  return { strict: false, refused: 0, windowAt: now, floodAt: 0, drops, tickAt: now };
}

/** The shared budget refused a datagram: strict once a second's refusals reach a flood's rate. */
export function refused(guard: FloodGuard, now: number, config = FLOOD_GUARD): FloodGuard {
  if (guard.strict) return guard;
  const fresh = now - guard.windowAt >= 1000;
  const count = (fresh ? 0 : guard.refused) + 1;
  const windowAt = fresh ? now : guard.windowAt;
  if (count < config.floodPerSecond) return { ...guard, refused: count, windowAt };
  return { ...guard, strict: true, refused: 0, windowAt: now, floodAt: now };
}

/** A periodic look at the kernel's drop count: strict stays while it rises at a flood's rate. */
export function tick(
  guard: FloodGuard,
  now: number,
  drops: number,
  config = FLOOD_GUARD,
): FloodGuard {
  const elapsed = Math.max(1, now - guard.tickAt);
  const rate = ((drops - guard.drops) * 1000) / elapsed;
  const next = { ...guard, drops, tickAt: now };
  if (!guard.strict) return next;
  const floodAt = rate >= config.floodPerSecond ? now : guard.floodAt;
  if (now - floodAt >= config.holdMs) return { ...next, strict: false, floodAt, refused: 0 };
  return { ...next, floodAt };
}
