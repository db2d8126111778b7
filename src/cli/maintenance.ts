import { Command } from "@commander-js/extra-typings";
import { rmSync, writeFileSync } from "node:fs";
import * as v from "valibot";
import { REQUEST_HEADER } from "../core/cross_site.ts";
import { boolean, duration } from "../core/config_fields.ts";
import { describeFetchError } from "../core/fetch_error.ts";
import { commonFields, opt, readSecretFile, withCommonOptions } from "./common.ts";
import { RuntimeFailure, UsageError } from "./errors.ts";
import { resolveOptions } from "./resolve_options.ts";

/** Exit codes of `galerad maintenance`, so a unit's ExecStop can tell the outcomes apart. */
export const MAINTENANCE_EXIT = { done: 0, timeout: 1, usage: 2 } as const;

const schema = v.object({
  agent: v.pipe(v.string(), v.url("expected the agent's URL, like http://127.0.0.1:9200")),
  enable: v.optional(v.string()),
  disable: boolean,
  file: v.optional(v.string()),
  apiUser: v.string(),
  apiPassword: v.optional(v.string()),
  apiPasswordFile: v.optional(v.string()),
  wait: boolean,
  timeout: duration(0),
  ...commonFields,
});

/**
 * `galerad maintenance`: puts the local node into maintenance (its agent then answers 503, so
 * every proxy moves away and severs its sessions) and waits until the node carries no client
 * session; or takes it out. What a mariadb.service drop-in calls before a stop (docs/operations.md).
 */
export function maintenanceCommand(): Command<[], Record<string, unknown>> {
  const command = new Command("maintenance")
    .description(
      "enter or leave maintenance on a node's agent; --wait until no client session is left",
    )
    .addOption(
      opt("--agent <url>", "the node's galerad healthcheck agent", "AGENT").default(
        "http://127.0.0.1:9200",
      ),
    )
    .addOption(opt("--enable <message>", "enter maintenance, saying why", "ENABLE"))
    .addOption(
      opt("--disable [bool]", "leave maintenance", "DISABLE").preset("true").default("false"),
    )
    .addOption(
      opt(
        "--file <path>",
        "write (or remove) the agent's --maintenance-file instead of calling its API",
        "MAINTENANCE_FILE",
      ),
    )
    .addOption(opt("--api-user <name>", "user for the agent's API", "API_USER").default("admin"))
    .addOption(opt("--api-password <password>", "password for the agent's API", "API_PASSWORD"))
    .addOption(
      opt(
        "--api-password-file <file>",
        "file whose first line is that password",
        "API_PASSWORD_FILE",
      ),
    )
    .addOption(
      opt(
        "--wait [bool]",
        "after entering, wait until the node carries no client session (exit 1 at --timeout)",
        "WAIT",
      ).preset("true").default("false"),
    )
    .addOption(
      opt("--timeout <duration>", "how long --wait waits", "TIMEOUT").default("60s"),
    );
  withCommonOptions(command);
  command.action(async () => {
    const o = await resolveOptions(command, schema);
    if ((o.enable === undefined) === !o.disable) {
      throw new UsageError("give exactly one of --enable MESSAGE or --disable");
    }
    if (o.enable !== undefined && o.enable.trim() === "") {
      throw new UsageError("invalid --enable: say why the node goes into maintenance");
    }
    const agent = o.agent.replace(/\/+$/, "");
    const password = o.apiPasswordFile
      ? readSecretFile("--api-password-file", o.apiPasswordFile)
      : o.apiPassword;
    if (o.file) {
      if (o.enable !== undefined) writeFileSync(o.file, `${o.enable.trim()}\n`);
      else rmSync(o.file, { force: true });
    } else {
      if (!password) {
        throw new UsageError(
          "missing --api-password-file (or --file): the agent's maintenance API needs its password",
        );
      }
      await call(agent, "PUT", "/api/v1/maintenance", { user: o.apiUser, password }, {
        enabled: o.enable !== undefined,
        ...(o.enable !== undefined ? { message: o.enable.trim() } : {}),
      });
    }
    console.log(
      o.enable !== undefined ? `maintenance on: ${o.enable.trim()}` : "maintenance off",
    );
    if (o.enable === undefined || !o.wait) return;
    const deadline = performance.now() + o.timeout;
    let last = "no answer yet";
    for (;;) {
      const status = await call(agent, "GET", "/api/v1/status").catch((e: Error) => ({
        error: e.message,
      })) as Record<string, unknown>;
      const sessions = status.client_sessions;
      if (typeof status.error === "string") last = status.error;
      else if (status.healthy !== false) last = "the agent still reports the node healthy";
      else if (sessions === null || sessions === undefined) {
        throw new RuntimeFailure(
          "the agent cannot count client sessions: grant its MySQL user the PROCESS privilege",
        );
      } else if (sessions === 0) {
        console.log("no client session left on the node");
        return;
      } else last = `${sessions} client sessions left`;
      if (performance.now() >= deadline) {
        throw new RuntimeFailure(`timed out after ${o.timeout}ms waiting: ${last}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  });
  return command;
}

async function call(
  agent: string,
  method: string,
  path: string,
  auth?: { user: string; password: string },
  body?: unknown,
): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(`${agent}${path}`, {
      method,
      headers: {
        ...(auth ? { Authorization: `Basic ${btoa(`${auth.user}:${auth.password}`)}` } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        [REQUEST_HEADER]: "1",
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
  } catch (error) {
    throw new RuntimeFailure(`agent at ${agent} unreachable (${describeFetchError(error, 5000)})`);
  }
  const text = await res.text();
  let data: Record<string, unknown> = {};
  try {
    data = JSON.parse(text);
  } catch { /* judged by the status */ }
  if (!res.ok) {
    throw new RuntimeFailure(
      `agent at ${agent} answered ${res.status} to ${method} ${path}: ${
        typeof data.error === "string" ? data.error : text.trim().slice(0, 200)
      }`,
    );
  }
  return data;
}
