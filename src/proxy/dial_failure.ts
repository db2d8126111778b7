import { getLogger } from "@logtape/logtape";
import type { Refusal } from "./refusal.ts";

const log = getLogger(["galerad", "proxy"]);

/** At most one log line per this long for failures that come in storms (descriptor limits). */
const STORM_LOG_MS = 5000;
let lastStormLog = 0;
let suppressed = 0;

/**
 * What a client is told, and what is logged, when dialling `node` failed. Running out of file
 * descriptors (EMFILE for this process, ENFILE for the system) is this host's problem, not the
 * node's: its own reason, and a log line at most every few seconds however many clients hit it.
 */
export function dialRefusal(node: string, role: "active" | "reader", error: unknown): Refusal {
  const reason = error instanceof Error ? error.message : String(error);
  const limit = /\b(EMFILE|ENFILE)\b/.exec(reason)?.[1];
  if (limit) {
    const now = performance.now();
    if (now - lastStormLog >= STORM_LOG_MS) {
      log.error(
        "cannot open a connection to {backend}: out of file descriptors ({code}){more}; raise LimitNOFILE / ulimit -n",
        {
          backend: node,
          code: limit,
          more: suppressed > 0 ? ` (${suppressed} more since the last line)` : "",
        },
      );
      lastStormLog = now;
      suppressed = 0;
    } else suppressed++;
    return {
      reason: "fd_limit",
      message: `the proxy is out of file descriptors (${limit}); try again later`,
    };
  }
  log.warn("cannot reach {role} node {backend}: {reason}", { role, backend: node, reason });
  return {
    reason: "backend_unreachable",
    message: `cannot reach ${role} node ${node}: ${reason}`,
  };
}
