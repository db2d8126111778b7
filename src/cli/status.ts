import { Command } from "@commander-js/extra-typings";
import process from "node:process";
import * as v from "valibot";
import { nonEmpty } from "../core/config_fields.ts";
import { describeFetchError } from "../core/fetch_error.ts";
import { opt, readSecretFile } from "./common.ts";
import { RuntimeFailure, UsageError } from "./errors.ts";
import { resolveOptions } from "./resolve_options.ts";

const schema = v.object({
  api: v.pipe(v.string(), v.url("expected a URL like http://127.0.0.1:8080")),
  apiUser: nonEmpty,
  apiPassword: v.optional(v.string()),
  apiPasswordFile: v.optional(v.string()),
  format: v.picklist(["table", "json"], "expected table or json"),
  config: v.optional(v.string()),
});

/** `galerad status`: one proxy's view, as a table on a terminal and JSON otherwise. */
export function statusCommand(): Command<[], Record<string, unknown>> {
  const command = new Command("status")
    .description("show a proxy's view: active node, backends, peers")
    .addOption(opt("--api <url>", "the proxy's API", "API").default("http://127.0.0.1:8080"))
    .addOption(opt("--api-user <name>", "API user", "API_USER").default("admin"))
    .addOption(opt("--api-password <password>", "API password", "API_PASSWORD"))
    .addOption(
      opt(
        "--api-password-file <file>",
        "file whose first line is the API password",
        "API_PASSWORD_FILE",
      ),
    )
    .addOption(
      opt("--format <format>", "table or json (default: table on a terminal)", "FORMAT").default(
        process.stdout.isTTY ? "table" : "json",
      ),
    )
    .addOption(opt("--config <file>", "read options from a JSON or YAML file", "CONFIG"));
  command.action(async () => {
    const options = await resolveOptions(command, schema);
    let password = options.apiPassword;
    if (options.apiPasswordFile) {
      password = readSecretFile("--api-password-file", options.apiPasswordFile);
    }
    if (!password) throw new UsageError("missing --api-password or --api-password-file");
    const base = options.api.replace(/\/+$/, "");
    const get = async (path: string) => {
      let res: Response;
      try {
        res = await fetch(`${base}${path}`, {
          headers: { Authorization: `Basic ${btoa(`${options.apiUser}:${password}`)}` },
          signal: AbortSignal.timeout(5000),
        });
      } catch (error) {
        throw new RuntimeFailure(`cannot reach ${base}: ${describeFetchError(error, 5000)}`);
      }
      if (res.status === 401) throw new RuntimeFailure(`${base} refused the credentials (401)`);
      if (!res.ok) throw new RuntimeFailure(`${base}${path} answered ${res.status}`);
      return await res.json();
    };
    const [cluster, backends, peers] = await Promise.all([
      get("/v0/cluster"),
      get("/v0/backends"),
      get("/v0/peers"),
    ]);
    if (options.format === "json") {
      process.stdout.write(JSON.stringify({ cluster, backends, peers }, null, 2) + "\n");
      return;
    }
    process.stdout.write(renderStatus(cluster, backends, peers));
  });
  return command;
}

type Row = Record<string, unknown>;

/** Renders the proxy's view as aligned text tables. */
export function renderStatus(cluster: Row, backends: Row[], peers: Row): string {
  const reg = cluster.register as Row;
  const lines: string[] = [];
  const state = !cluster.ready
    ? "starting"
    : cluster.trafficEnabled
    ? "routing"
    : `traffic disabled (${cluster.message})`;
  lines.push(
    `proxy ${cluster.name}: ${state}; routes to ${
      cluster.activeBackend ?? "nothing"
    } (${cluster.activeReason})`,
  );
  lines.push(
    `register: epoch ${reg.epoch}, active ${reg.active ?? "none"}, by ${
      reg.proposer || "-"
    }: ${reg.reason}`,
  );
  lines.push("");
  lines.push(...table(
    ["BACKEND", "ADDRESS", "HEALTH", "ACTIVE", "SESSIONS", "INDEX", "STATE", "REASON"],
    backends.map((b) => [
      String(b.name),
      `${b.host}:${b.port}`,
      b.maintenance ? "drained" : String(b.status),
      b.active ? "*" : "",
      String(b.currentSessionCount),
      b.wsrepLocalIndex === null ? "-" : String(b.wsrepLocalIndex),
      String(b.wsrepLocalStateComment ?? "-"),
      String(b.reason),
    ]),
  ));
  const list = (peers.peers ?? []) as Row[];
  if (list.length > 0) {
    lines.push("");
    lines.push(...table(
      ["PEER", "ADDRESS", "LIVE", "LAST SEEN", "EPOCH", "ACTIVE", "AGREES"],
      list.map((p) => [
        String(p.name),
        String(p.address),
        p.live ? "yes" : "no",
        p.lastSeen
          ? `${
            Math.max(0, Math.round((Date.now() - Date.parse(String(p.lastSeen))) / 100) / 10)
          }s ago`
          : "never",
        p.epoch === null ? "-" : String(p.epoch),
        String(p.active ?? "-"),
        p.agrees ? "yes" : "NO",
      ]),
    ));
  }
  return lines.join("\n") + "\n";
}

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(head), ...rows.map(line)];
}
