import { Command, Option } from "@commander-js/extra-typings";
import process from "node:process";
import * as v from "valibot";
import { AgentClient, type AgentTarget, waitSynced } from "../bootstrap/agent_client.ts";
import { type Plan, planBootstrap } from "../bootstrap/plan.ts";
import { boolean, duration, nonEmpty } from "../core/config_fields.ts";
import { applyLogging, commonFields, opt, readSecretFile, withCommonOptions } from "./common.ts";
import { UsageError } from "./errors.ts";
import { resolveOptions } from "./resolve_options.ts";

/** Exit codes of `galerad bootstrap`, so scripts can tell the outcomes apart. */
export const BOOTSTRAP_EXIT = { done: 0, failed: 1, usage: 2, nothing: 3, refused: 4 } as const;

const agentTarget = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const text = dataset.value;
    const eq = text.indexOf("=");
    const [name, url] = eq > 0 && !text.slice(0, eq).includes("/")
      ? [text.slice(0, eq), text.slice(eq + 1)]
      : ["", text];
    try {
      const parsed = new URL(url);
      if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error();
      return { name: name || parsed.host, url: url.replace(/\/+$/, "") } as AgentTarget;
    } catch {
      addIssue({ message: `"${text}": expected [NAME=]http://HOST:PORT` });
      return NEVER;
    }
  }),
);

const schema = v.object({
  agent: v.pipe(v.array(agentTarget), v.minLength(1, "give at least one --agent [NAME=]URL")),
  apiUser: nonEmpty,
  apiPassword: v.optional(v.string()),
  apiPasswordFile: v.optional(v.string()),
  dryRun: boolean,
  force: boolean,
  nodeTimeout: duration(1000),
  format: v.picklist(["text", "json"], "expected text or json"),
  ...commonFields,
});

/** `galerad bootstrap`: bring a fully stopped Galera cluster back, safely. */
export function bootstrapCommand(): Command<[], Record<string, unknown>> {
  const command = new Command("bootstrap")
    .description(
      "bring a stopped Galera cluster back: the most advanced node starts it, the others join one at a time",
    )
    .addOption(
      opt("--agent <[name=]url>", "a node's galerad healthcheck agent (repeatable)", "AGENT")
        .argParser((
          value: string,
          previous: string[] | undefined,
        ) => [...(previous ?? []), ...value.split(/[\s,;]+/).filter(Boolean)])
        .default([] as string[]),
    )
    .addOption(
      opt("--api-user <name>", "user for the agents' controls", "API_USER").default("admin"),
    )
    .addOption(
      opt("--api-password <password>", "password for the agents' controls", "API_PASSWORD"),
    )
    .addOption(
      opt(
        "--api-password-file <file>",
        "file whose first line is that password",
        "API_PASSWORD_FILE",
      ),
    )
    .addOption(
      opt("--dry-run [bool]", "print the plan and why, change nothing", "DRY_RUN").preset("true")
        .default("false"),
    )
    .addOption(
      opt(
        "--force [bool]",
        "bootstrap even when a node cannot be read (it might hold newer state!)",
        "FORCE",
      ).preset("true").default("false"),
    )
    .addOption(
      opt(
        "--node-timeout <duration>",
        "how long one node may take to become Synced (an SST can be long)",
        "NODE_TIMEOUT",
      ).default("30m"),
    )
    .addOption(
      new Option("--format <format>", "text or json (default: text on a terminal, json otherwise)")
        .env("GALERAD_FORMAT").default(process.stdout.isTTY ? "text" : "json"),
    );
  withCommonOptions(command);
  command.action(async () => {
    const options = await resolveOptions(command, schema);
    applyLogging(options);
    let password = options.apiPassword;
    if (options.apiPasswordFile) {
      password = readSecretFile("--api-password-file", options.apiPasswordFile);
    }
    if (!password) {
      throw new UsageError(
        "missing --api-password or --api-password-file: the agents' controls need it",
      );
    }
    const names = new Set<string>();
    for (const a of options.agent) {
      if (names.has(a.name)) {
        throw new UsageError(`invalid --agent: name "${a.name}" is used twice`);
      }
      names.add(a.name);
    }
    const clients = options.agent.map((a) =>
      new AgentClient(a, { user: options.apiUser, password: password! })
    );
    process.exitCode = await runBootstrap(clients, options);
  });
  return command;
}

async function runBootstrap(
  clients: AgentClient[],
  options: { dryRun: boolean; force: boolean; nodeTimeout: number; format: "text" | "json" },
): Promise<number> {
  const json = options.format === "json";
  const say = (line: string) => {
    if (!json) process.stdout.write(`${line}\n`);
  };
  const events: string[] = [];
  const progress = (line: string) => {
    events.push(line);
    say(`  ${line}`);
  };
  say(`surveying ${clients.length} agents…`);
  const survey = await Promise.all(clients.map((c) => c.survey()));
  for (const n of survey) {
    progress(
      !n.reachable
        ? `${n.name}: unreachable (${n.error})`
        : n.mysql === "running"
        ? `${n.name}: running, ${n.synced ? "Synced" : "not Synced"}, ${
          n.primary ? "Primary" : "non-Primary"
        }`
        : `${n.name}: ${n.mysql}${
          n.seqno !== undefined
            ? `, uuid ${n.uuid}, seqno ${n.seqno}, safe_to_bootstrap ${n.safeToBootstrap ? 1 : 0}`
            : n.error
            ? ` (${n.error})`
            : ""
        }`,
    );
  }
  const plan = planBootstrap(survey, { force: options.force });
  say(describePlan(plan));
  const finish = (outcome: keyof typeof BOOTSTRAP_EXIT, error?: string) => {
    if (json) {
      process.stdout.write(
        JSON.stringify({ outcome, plan, survey, events, error }, null, 2) + "\n",
      );
    } else if (error) process.stderr.write(`galerad: ${error}\n`);
    return BOOTSTRAP_EXIT[outcome];
  };
  if (plan.action === "refuse") return finish("refused", `refused: ${plan.reasons.join("; ")}`);
  if (plan.action === "nothing") return finish("nothing");
  if (options.dryRun) {
    say("dry run: nothing changed");
    return finish("done");
  }
  const byName = new Map(clients.map((c) => [c.target.name, c]));
  try {
    if (plan.action === "bootstrap") {
      const first = byName.get(plan.bootstrap)!;
      progress(`${first.target.name}: starting a new cluster`);
      await first.start("start_mysql_bootstrap");
      await waitSynced(first, options.nodeTimeout, progress);
      progress(`${first.target.name}: Synced and Primary`);
    }
    for (const name of plan.join) {
      const client = byName.get(name)!;
      progress(`${name}: joining`);
      await client.start("start_mysql_join");
      await waitSynced(client, options.nodeTimeout, progress);
      progress(`${name}: Synced`);
    }
  } catch (error) {
    return finish(
      "failed",
      `${
        (error as Error).message
      }; the nodes already started are left running: fix the node and run galerad bootstrap again`,
    );
  }
  say("done: every node is Synced");
  return finish("done");
}

function describePlan(plan: Plan): string {
  const why = plan.reasons.map((r) => `  - ${r}`).join("\n");
  switch (plan.action) {
    case "nothing":
      return `plan: nothing to do\n${why}`;
    case "refuse":
      return `plan: REFUSED\n${why}`;
    case "join":
      return `plan: join ${plan.join.join(", ")} to the running cluster\n${why}`;
    case "bootstrap":
      return `plan: bootstrap ${plan.bootstrap}, then join ${
        plan.join.join(", ") || "nobody"
      }\n${why}`;
  }
}
