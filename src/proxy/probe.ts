import { interpretStatusCode, interpretStatusJson } from "../core/agent_status.ts";
import { fetchErrorCode } from "../core/fetch_error.ts";
import type { ProbeResult } from "../core/health_state.ts";

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
