import type { ProbeResult } from "./health_state.ts";

/**
 * Reads a `GET /api/v1/status` answer (galerad healthcheck, galera-agent): a JSON object with a
 * boolean `healthy` and, when known, `wsrep_local_index` and `wsrep_local_state`. Anything
 * else is a failed probe with a reason that says what was wrong.
 */
export function interpretStatusJson(
  httpStatus: number,
  body: string,
  latencyMs: number,
): ProbeResult {
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch {
    return { ok: false, reason: `agent answered ${httpStatus} with malformed JSON`, latencyMs };
  }
  if (
    typeof data !== "object" || data === null ||
    typeof (data as Record<string, unknown>).healthy !== "boolean"
  ) {
    return {
      ok: false,
      reason: `agent answered ${httpStatus} without a boolean "healthy"`,
      latencyMs,
    };
  }
  const record = data as Record<string, unknown>;
  const index = toInt(record.wsrep_local_index);
  const state = toInt(record.wsrep_local_state);
  const comment = typeof record.wsrep_local_state_comment === "string"
    ? record.wsrep_local_state_comment
    : null;
  const healthy = record.healthy === true;
  const given = typeof record.reason === "string" && record.reason !== "" ? record.reason : null;
  const reason = given ??
    (healthy
      ? "agent reports healthy"
      : `agent reports unhealthy${comment ? ` (${comment})` : ""}`);
  const witness = record.witness as Record<string, unknown> | undefined;
  const port = toInt(witness?.port);
  return {
    ok: healthy,
    reason,
    witnessPort: port !== null && port > 0 && port < 65536 ? port : null,
    wsrepLocalIndex: index,
    wsrepLocalState: state,
    wsrepLocalStateComment: comment,
    latencyMs,
  };
}

/**
 * Reads a clustercheck-style answer of `GET /`: 200 is healthy, anything else is not; the
 * first line of the body is kept as the reason.
 */
export function interpretStatusCode(
  httpStatus: number,
  body: string,
  latencyMs: number,
): ProbeResult {
  const line = body.split("\n").map((l) => l.trim()).find((l) => l !== "")?.slice(0, 200);
  return {
    ok: httpStatus === 200,
    reason: `agent answered ${httpStatus}${line ? `: ${line}` : ""}`,
    witnessPort: null, // it answered, and a clustercheck agent never votes
    latencyMs,
  };
}

function toInt(value: unknown): number | null {
  if (typeof value === "number" && Number.isInteger(value)) return value;
  if (typeof value === "string" && /^-?\d+$/.test(value)) return Number(value);
  return null;
}
