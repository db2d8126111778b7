import { Hono, type MiddlewareHandler } from "hono";
import { basicAuth } from "hono/basic-auth";
import { bodyCap, crossSiteGuard, securityHeaders } from "../http/cross_site_guard.ts";
import type { Agent } from "./agent.ts";
import type { CatchUp } from "./catch_up.ts";
import { ControlError, type Controls, type OperationName } from "./controls.ts";

/** Credentials for the agent's controls; when absent, the controls answer 403. */
export interface AgentAuth {
  user: string;
  password: string;
}

function int(value: string | undefined): number | null {
  return value !== undefined && /^-?\d+$/.test(value) ? Number(value) : null;
}

/** The vote port as the status shows it: where, and what it received, sent and dropped. */
export interface VoteStatus {
  port: number;
  received: number;
  sent: number;
  dropped: Partial<Record<string, number>>;
}

/** The JSON status: galera-agent's fields, plus what an operator needs to see why. */
export function statusView(agent: Agent, vote?: VoteStatus | null) {
  const { verdict, readings, checkedAt } = agent.current();
  return {
    ...(vote ? { witness: vote } : {}),
    healthy: verdict.healthy,
    reason: verdict.reason,
    wsrep_local_state: int(readings.wsrep_local_state),
    wsrep_local_state_comment: readings.wsrep_local_state_comment ?? null,
    wsrep_local_index: int(readings.wsrep_local_index),
    wsrep_cluster_status: readings.wsrep_cluster_status ?? null,
    wsrep_cluster_size: int(readings.wsrep_cluster_size),
    wsrep_cluster_state_uuid: readings.wsrep_cluster_state_uuid ?? null,
    wsrep_last_committed: int(readings.wsrep_last_committed),
    wsrep_node_name: readings.wsrep_node_name ?? null,
    read_only: readings.read_only === undefined ? null : /^(ON|1)$/i.test(readings.read_only),
    maintenance: agent.maintenance(),
    client_sessions: int(readings.client_sessions),
    checked_at: checkedAt === null ? null : new Date(checkedAt).toISOString(),
  };
}

/**
 * The agent's HTTP interface. `GET /` is clustercheck-compatible (200 or 503 with one line);
 * `GET /api/v1/status` is galera-agent's JSON (always 200: the body says whether the node is
 * healthy); `GET /health` says the agent itself runs. Controls need Basic Auth.
 */
export function createAgentApp(
  agent: Agent,
  auth: AgentAuth | null,
  controls?: Controls,
  vote?: () => VoteStatus | null,
  catchUp?: CatchUp,
): Hono {
  const app = new Hono();
  app.use("*", securityHeaders(), crossSiteGuard(), bodyCap());
  app.get("/", (c) => {
    const { verdict } = agent.current();
    return c.text(`${verdict.reason}\n`, verdict.healthy ? 200 : 503);
  });
  app.get("/api/v1/status", (c) => c.json(statusView(agent, vote?.())));
  app.get("/health", (c) => c.text("ok\n"));
  if (catchUp) {
    // Read-only (a causal read), so open like the status: a proxy asks it before moving clients.
    app.get("/api/v1/caught_up", async (c) => {
      const raw = c.req.query("timeout_ms") ?? "5000";
      const timeoutMs = /^\d{1,6}$/.test(raw) ? Number(raw) : NaN;
      if (!(timeoutMs >= 1 && timeoutMs <= 60_000)) {
        return c.json({
          error: `timeout_ms must be an integer from 1 to 60000: current value is ${
            JSON.stringify(raw)
          }`,
        }, 400);
      }
      const r = await catchUp.wait(timeoutMs);
      return r.ok
        ? c.json({ caught_up: true, wsrep_last_committed: r.lastCommitted, ms: r.ms })
        : c.json({ caught_up: false, reason: r.reason, ms: r.ms }, 503);
    });
  }

  const guard: MiddlewareHandler = auth
    ? basicAuth({
      username: auth.user,
      password: auth.password,
      realm: "galerad agent",
      invalidUserMessage: { error: "authentication required" },
    })
    : (c) =>
      Promise.resolve(
        c.json({
          error: "controls are off: start the agent with --api-password or --api-password-file",
        }, 403),
      );
  app.get("/api/v1/maintenance", guard, (c) => c.json({ maintenance: agent.maintenance() }));
  app.put("/api/v1/maintenance", guard, async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return c.json({ error: 'body must be JSON like {"enabled": true, "message": "…"}' }, 400);
    }
    const { enabled, message } = (body ?? {}) as { enabled?: unknown; message?: unknown };
    if (typeof enabled !== "boolean") {
      return c.json({
        error: `enabled must be true or false: current value is ${JSON.stringify(enabled ?? null)}`,
      }, 400);
    }
    if (enabled && (typeof message !== "string" || message.trim() === "")) {
      return c.json({ error: "message is required when enabling maintenance" }, 400);
    }
    agent.apiMaintenance = enabled ? (message as string).trim() : null;
    await agent.poll();
    return c.json({ maintenance: agent.maintenance() });
  });
  if (controls) {
    const guarded = (fn: () => Promise<Response> | Response) => async () => {
      try {
        return await fn();
      } catch (error) {
        if (error instanceof ControlError) {
          return Response.json({ error: error.message }, { status: error.status });
        }
        throw error;
      }
    };
    app.get(
      "/mysql_status",
      guard,
      guarded(() => Response.json({ status: controls.mysqlStatus() })),
    );
    app.get(
      "/sequence_number",
      guard,
      guarded(async () => Response.json(await controls.sequenceNumber())),
    );
    app.get(
      "/api/v1/operation",
      guard,
      guarded(() => Response.json({ current: controls.current, last: controls.last })),
    );
    for (
      const name of ["stop_mysql", "start_mysql_bootstrap", "start_mysql_join"] as OperationName[]
    ) {
      app.post(
        `/${name}`,
        guard,
        guarded(() => Response.json(controls.start(name), { status: 202 })),
      );
    }
  }
  return app;
}
