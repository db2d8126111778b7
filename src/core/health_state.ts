/** What one probe of a node's health agent said. */
export interface ProbeResult {
  ok: boolean;
  /** One line: why the node is (un)healthy, or why the probe failed. */
  reason: string;
  wsrepLocalIndex?: number | null;
  wsrepLocalState?: number | null;
  wsrepLocalStateComment?: string | null;
  latencyMs: number;
  /** The UDP port of the agent's vote (`--quorum agents`), when it is a galerad agent that votes. */
  witnessPort?: number | null;
}

export type HealthStatus = "unknown" | "healthy" | "unhealthy";

/** A backend's health as the proxy tracks it between probes. */
export interface HealthState {
  status: HealthStatus;
  /** Consecutive probe results that disagree with `status` (counts toward rise or fall). */
  streak: number;
  /** Reason of the last status change (or of the last probe while unknown). */
  reason: string;
  /** Milliseconds since the epoch of the last status change; null before the first probe. */
  lastChange: number | null;
  wsrepLocalIndex: number | null;
  wsrepLocalState: number | null;
  wsrepLocalStateComment: string | null;
  lastProbe: ProbeResult | null;
}

/** Hysteresis: how many consecutive results it takes to change a backend's status. */
export interface Hysteresis {
  rise: number;
  fall: number;
}

/** The state of a backend no probe has answered for yet. */
export function initialHealth(): HealthState {
  return {
    status: "unknown",
    streak: 0,
    reason: "not probed yet",
    lastChange: null,
    wsrepLocalIndex: null,
    wsrepLocalState: null,
    wsrepLocalStateComment: null,
    lastProbe: null,
  };
}

/**
 * Folds one probe result into a backend's health. The first result decides at once (so a
 * starting proxy routes after one round); afterwards `fall` consecutive failures mark a healthy
 * node down and `rise` consecutive successes bring an unhealthy one back, so one lost probe
 * never severs every session.
 */
export function applyProbe(
  state: HealthState,
  probe: ProbeResult,
  options: Hysteresis & { now: number },
): { state: HealthState; changed: boolean } {
  const next: HealthState = {
    ...state,
    lastProbe: probe,
    wsrepLocalIndex: probe.wsrepLocalIndex !== undefined
      ? probe.wsrepLocalIndex
      : state.wsrepLocalIndex,
    wsrepLocalState: probe.wsrepLocalState !== undefined
      ? probe.wsrepLocalState
      : state.wsrepLocalState,
    wsrepLocalStateComment: probe.wsrepLocalStateComment !== undefined
      ? probe.wsrepLocalStateComment
      : state.wsrepLocalStateComment,
  };
  const agrees = state.status === (probe.ok ? "healthy" : "unhealthy");
  if (agrees) return { state: { ...next, streak: 0 }, changed: false };
  const needed = state.status === "unknown" ? 1 : probe.ok ? options.rise : options.fall;
  const streak = state.streak + 1;
  if (streak < needed) return { state: { ...next, streak }, changed: false };
  return {
    state: {
      ...next,
      status: probe.ok ? "healthy" : "unhealthy",
      streak: 0,
      reason: probe.reason,
      lastChange: options.now,
    },
    changed: true,
  };
}
