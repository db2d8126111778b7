import { interpretStatusCode, interpretStatusJson } from "../core/agent_status.ts";
import { fetchErrorCode } from "../core/fetch_error.ts";
import type { ProbeResult } from "../core/health_state.ts";
import type { Fetch } from "../runtime/types.ts";

/** How the agent at one URL is asked; learned from its first answers. */
export interface ProbeMode {
  /** False once the agent answered 404 to `/api/v1/status` (clustercheck-only agents). */
  statusApi: boolean;
}

/**
 * Asks a node's health agent once, bounded by `timeoutMs` from start to the last body byte.
 * Prefers `GET /api/v1/status` (health plus `wsrep_local_index`); an agent that does not have
 * it (404) is asked `GET /` and judged by the status code from then on. Unreachable, slow or
 * malformed answers are failed probes; this function never throws.
 */
export async function probeAgent(
  baseUrl: string,
  mode: ProbeMode,
  timeoutMs: number,
  fetch: Fetch = globalThis.fetch,
): Promise<ProbeResult> {
  const started = performance.now();
  const signal = AbortSignal.timeout(timeoutMs);
  const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
  try {
    if (mode.statusApi) {
      const response = await fetch(`${baseUrl}/api/v1/status`, { signal, redirect: "manual" });
      const body = await response.text();
      if (response.status !== 404) return interpretStatusJson(response.status, body, elapsed());
      mode.statusApi = false;
    }
    const response = await fetch(`${baseUrl}/`, { signal, redirect: "manual" });
    const body = await response.text();
    return interpretStatusCode(response.status, body, elapsed());
  } catch (error) {
    const reason = signal.aborted
      ? `agent did not answer within ${timeoutMs}ms`
      : `agent unreachable: ${describe(error)}`;
    return { ok: false, reason, latencyMs: elapsed() };
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = fetchErrorCode(error);
  return code ? `${code} (${error.message})` : error.message;
}

/** What an agent said when asked to catch up; `ok` also when it cannot be asked (no such API). */
export interface CatchUpAnswer {
  ok: boolean;
  reason: string;
  ms: number;
}

/**
 * Asks a node's agent to wait until the node has applied every write set ordered before the
 * ask (`GET /api/v1/caught_up`, a causal read). An agent without that route (404: clustercheck,
 * an older galerad) cannot be asked, which is not a failure. Never throws.
 */
export async function askCaughtUp(
  baseUrl: string,
  timeoutMs: number,
  fetch: Fetch = globalThis.fetch,
): Promise<CatchUpAnswer> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  // The agent's own wait ends first, so its answer (not our abort) says what happened.
  const signal = AbortSignal.timeout(timeoutMs + 1000);
  try {
    const response = await fetch(`${baseUrl}/api/v1/caught_up?timeout_ms=${timeoutMs}`, {
      signal,
      redirect: "manual",
    });
    const text = await response.text();
    if (response.status === 404) return { ok: true, reason: "the agent cannot be asked", ms: ms() };
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text);
    } catch { /* judged by the status below */ }
    if (response.status === 200 && body.caught_up === true) {
      const seqno = body.wsrep_last_committed;
      return {
        ok: true,
        reason: `caught up${seqno != null ? ` at seqno ${seqno}` : ""}`,
        ms: ms(),
      };
    }
    const why = typeof body.reason === "string"
      ? body.reason
      : typeof body.error === "string"
      ? body.error
      : `agent answered ${response.status}`;
    return { ok: false, reason: why.slice(0, 300), ms: ms() };
  } catch (error) {
    const reason = signal.aborted
      ? `agent did not answer within ${timeoutMs + 1000}ms`
      : `agent unreachable: ${describe(error)}`;
    return { ok: false, reason, ms: ms() };
  }
}
