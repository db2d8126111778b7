/** What the idle check remembers of one spliced session. */
export interface IdleMark {
  up: number;
  down: number;
  /** When `up` (client to backend bytes) last changed; the splice start at first. */
  upAt: number;
  /** When `down` (backend to client bytes) last changed; the splice start at first. */
  downAt: number;
  splicedAt: number;
}

export interface IdleLimits {
  /** No byte from the client for this long closes the session; 0: never (the default). */
  clientIdleMs: number;
  /** No byte from the backend for this long closes it; 0: never. */
  backendIdleMs: number;
  /** A backend that sent nothing (no MySQL greeting) this long after the splice failed to connect. */
  greetingMs: number;
  /**
   * How stale the byte counts may be (data-plane threads report them periodically): silence
   * counts only beyond each limit plus this, so a talking session is never taken for idle.
   */
  reportLagMs: number;
}

export type IdleVerdict = "no greeting" | "client idle" | "backend idle";

/**
 * Takes a session's byte counts now and says whether it must close (and why), with the marks
 * to keep. A server speaks first in MySQL, so a backend that sent nothing at all is a connect
 * that failed, whatever the idle limits; after that, each side's silence against its limit
 * (HAProxy's `timeout client` and `timeout server`, off by default as in Switchboard).
 */
export function checkIdle(
  mark: IdleMark,
  bytes: { up: number; down: number },
  now: number,
  limits: IdleLimits,
): { mark: IdleMark; verdict: IdleVerdict | null } {
  const moved = bytes.up !== mark.up || bytes.down !== mark.down;
  const next = moved ? { ...mark } : mark;
  if (bytes.up !== mark.up) (next.up = bytes.up), (next.upAt = now);
  if (bytes.down !== mark.down) (next.down = bytes.down), (next.downAt = now);
  let verdict: IdleVerdict | null = null;
  const lag = limits.reportLagMs;
  if (next.down === 0 && limits.greetingMs > 0 && now - next.splicedAt >= limits.greetingMs + lag) {
    verdict = "no greeting";
  } else if (limits.clientIdleMs > 0 && now - next.upAt >= limits.clientIdleMs + lag) {
    verdict = "client idle";
  } else if (limits.backendIdleMs > 0 && now - next.downAt >= limits.backendIdleMs + lag) {
    verdict = "backend idle";
  }
  return { mark: next, verdict };
}

/**
 * Whether `checkIdle` could ever close a session that moved `bytes` under these limits: with
 * both idle limits off, only a missing greeting can. Lets a sweep pass over ten thousand
 * greeted sessions without touching them; their marks stay right, since a count that has not
 * changed since the mark means nothing moved since it.
 */
export function mayTurnIdle(bytes: { down: number }, limits: IdleLimits): boolean {
  if (limits.clientIdleMs > 0 || limits.backendIdleMs > 0) return true;
  return bytes.down === 0 && limits.greetingMs > 0;
}

/** The first mark of a session spliced at `now`. */
export function idleMark(now: number): IdleMark {
  return { up: 0, down: 0, upAt: now, downAt: now, splicedAt: now };
}
