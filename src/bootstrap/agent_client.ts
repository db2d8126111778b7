import type { NodeSurvey } from "./plan.ts";
import { REQUEST_HEADER } from "../core/cross_site.ts";
import { describeFetchError } from "../core/fetch_error.ts";

/** One node's agent as `galerad bootstrap` addresses it. */
export interface AgentTarget {
  name: string;
  url: string;
}

/** Credentials for the agents' controls. */
export interface AgentCredentials {
  user: string;
  password: string;
}

/** A talk with one agent's controls; every call is bounded and throws an Error naming the node. */
export class AgentClient {
  constructor(readonly target: AgentTarget, readonly auth: AgentCredentials) {}

  async #call(method: string, path: string, timeoutMs: number): Promise<Record<string, unknown>> {
    const headers = {
      Authorization: `Basic ${btoa(`${this.auth.user}:${this.auth.password}`)}`,
      // Bodiless state changes carry it: a page of another site cannot (core/cross_site.ts).
      [REQUEST_HEADER]: "1",
    };
    let res: Response;
    try {
      res = await fetch(`${this.target.url}${path}`, {
        method,
        headers,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const why = describeFetchError(error, timeoutMs);
      throw new Error(`${this.target.name}: agent at ${this.target.url} unreachable (${why})`);
    }
    const text = await res.text();
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text);
    } catch {
      body = { error: text.trim().slice(0, 200) };
    }
    if (res.status === 401) {
      throw new Error(`${this.target.name}: the agent refused our credentials (401)`);
    }
    if (res.status >= 400) {
      throw new Error(
        `${this.target.name}: ${method} ${path} answered ${res.status}: ${
          body.error ?? text.trim()
        }`,
      );
    }
    return body;
  }

  status(): Promise<Record<string, unknown>> {
    return this.#call("GET", "/api/v1/status", 5000);
  }

  /** What the plan needs to know about this node; never throws (an unreachable node says so). */
  async survey(): Promise<NodeSurvey> {
    const name = this.target.name;
    try {
      const mysql = String(
        (await this.#call("GET", "/mysql_status", 5000)).status,
      ) as NodeSurvey["mysql"];
      if (mysql === "running") {
        const s = await this.status();
        return {
          name,
          reachable: true,
          mysql,
          synced: s.wsrep_local_state === 4,
          primary: s.wsrep_cluster_status === "Primary",
        };
      }
      if (mysql === "starting") return { name, reachable: true, mysql };
      try {
        const seq = await this.#call("GET", "/sequence_number", 600_000);
        return {
          name,
          reachable: true,
          mysql,
          uuid: String(seq.uuid),
          seqno: Number(seq.seqno),
          safeToBootstrap: seq.safe_to_bootstrap === 1,
        };
      } catch (error) {
        return {
          name,
          reachable: true,
          mysql,
          error: (error as Error).message.replace(`${name}: `, ""),
        };
      }
    } catch (error) {
      return { name, reachable: false, error: (error as Error).message.replace(`${name}: `, "") };
    }
  }

  start(kind: "start_mysql_bootstrap" | "start_mysql_join"): Promise<Record<string, unknown>> {
    return this.#call("POST", `/${kind}`, 10_000);
  }

  operation(): Promise<
    { current: Record<string, unknown> | null; last: Record<string, unknown> | null }
  > {
    return this.#call("GET", "/api/v1/operation", 5000) as Promise<
      { current: Record<string, unknown> | null; last: Record<string, unknown> | null }
    >;
  }
}

/**
 * Waits until the node is Synced in a Primary component, failing early when the agent's start
 * operation failed or timed out (with the tail of its output), or after `timeoutMs`.
 */
export async function waitSynced(
  client: AgentClient,
  timeoutMs: number,
  onProgress: (line: string) => void,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastState = "";
  while (Date.now() < deadline) {
    const status = await client.status().catch(() => null);
    if (status) {
      const state = `${status.wsrep_local_state_comment ?? "not running"} / ${
        status.wsrep_cluster_status ?? "no cluster"
      }`;
      if (state !== lastState) {
        onProgress(`${client.target.name}: ${state}`);
        lastState = state;
      }
      if (status.wsrep_local_state === 4 && status.wsrep_cluster_status === "Primary") return;
    }
    const op = await client.operation().catch(() => null);
    const last = op?.current ?? op?.last;
    if (last && (last.state === "failed" || last.state === "timed_out")) {
      const tail = String(last.output ?? "").trim().split("\n").slice(-3).join(" | ");
      throw new Error(
        `${client.target.name}: start ${last.state} (exit code ${last.exitCode}): ${tail}`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${client.target.name}: not Synced in a Primary component within ${timeoutMs}ms`);
}
