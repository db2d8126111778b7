import { Command } from "@commander-js/extra-typings";
import { getLogger } from "@logtape/logtape";
import { keepRegistered } from "../discover/keep_registered.ts";
import { registryField } from "../discover/registry_field.ts";
import { spawn } from "node:child_process";
import { hostname } from "node:os";
import process from "node:process";
import * as v from "valibot";
import { parseHostPort } from "../core/address.ts";
import { commandLine, duration, integer, name } from "../core/config_fields.ts";
import { gcommAddress, type Member, type Role } from "../discover/registry.ts";
import { watchMembers } from "../discover/watch.ts";
import { applyLogging, commonFields, onShutdownSignal, opt, withCommonOptions } from "./common.ts";
import { RuntimeFailure } from "./errors.ts";
import { resolveOptions } from "./resolve_options.ts";

const log = getLogger(["galerad", "discover"]);

const role = v.picklist(["node", "proxy"], "expected node or proxy");
const address = v.pipe(
  v.string(),
  v.check((s) => (parseHostPort(s, "")?.host ?? "") !== "", "expected HOST:PORT"),
);

/** `galerad discover`: register with and read from etcd, Consul, DNS or a static list. */
export function discoverCommand(): Command<[], Record<string, unknown>> {
  const command = new Command("discover").description(
    "register and find nodes and proxies in etcd, Consul or DNS",
  );
  command.addCommand(registerCommand() as unknown as Command);
  command.addCommand(listCommand() as unknown as Command);
  command.addCommand(watchCommand() as unknown as Command);
  for (const c of command.commands) c.exitOverride();
  return command as unknown as Command<[], Record<string, unknown>>;
}

function registerCommand() {
  const schema = v.object({
    registry: registryField,
    role,
    name,
    address,
    health: v.optional(v.pipe(v.string(), v.url("expected a URL"))),
    api: v.optional(v.pipe(v.string(), v.url("expected a URL"))),
    galera: v.optional(address),
    ttl: duration(2000),
    ...commonFields,
  });
  const command = new Command("register")
    .description(
      "keep this member registered until stopped (SIGTERM removes it; a crash lets the TTL expire it)",
    )
    .addOption(opt("--registry <url>", "etcd://HOST:PORT/PREFIX or consul://HOST:PORT", "REGISTRY"))
    .addOption(opt("--role <role>", "node or proxy", "ROLE"))
    .addOption(
      opt("--name <name>", "member name", "NAME").default(hostname().split(".")[0] || "galerad"),
    )
    .addOption(
      opt("--address <host:port>", "a node's MySQL address, or a proxy's peer address", "ADDRESS"),
    )
    .addOption(opt("--health <url>", "a node's agent URL", "HEALTH"))
    .addOption(opt("--api <url>", "a proxy's API URL", "API"))
    .addOption(opt("--galera <host:port>", "a node's Galera address, when not HOST:4567", "GALERA"))
    .addOption(
      opt("--ttl <duration>", "the entry expires this long after the last renewal", "TTL").default(
        "10s",
      ),
    );
  withCommonOptions(command);
  command.action(async () => {
    const o = await resolveOptions(command, schema);
    applyLogging(o);
    const member: Member = {
      role: o.role,
      name: o.name,
      address: o.address,
      ...(o.health ? { health: o.health } : {}),
      ...(o.api ? { api: o.api } : {}),
      ...(o.galera ? { galera: o.galera } : {}),
    };
    const registration = await keepRegistered(o.registry, member, o.ttl).catch((error: Error) => {
      throw new RuntimeFailure(error.message);
    });
    onShutdownSignal(() => registration.close());
  });
  return command;
}

function listCommand() {
  const schema = v.object({
    registry: registryField,
    role: v.optional(role),
    format: v.picklist(["table", "json", "gcomm", "lines"], "expected table, json, gcomm or lines"),
    galeraPort: v.optional(integer(1, 65535)),
  });
  const command = new Command("list")
    .description("print the registered members")
    .addOption(opt("--registry <url>", "registry URL", "REGISTRY"))
    .addOption(opt("--role <role>", "node or proxy (default: both)", "ROLE"))
    .addOption(
      opt("--format <format>", "table, json, gcomm (a wsrep_cluster_address) or lines", "FORMAT")
        .default(process.stdout.isTTY ? "table" : "json"),
    )
    .addOption(
      opt(
        "--galera-port <port>",
        "with --format gcomm: the Galera port to add to each host",
        "GALERA_PORT",
      ),
    );
  command.action(async () => {
    const o = await resolveOptions(command, schema);
    let members: Member[];
    try {
      members = await o.registry.list(o.role as Role | undefined);
    } catch (error) {
      throw new RuntimeFailure((error as Error).message);
    }
    process.stdout.write(formatMembers(members, o.format, o.galeraPort));
  });
  return command;
}

/** Renders members for `discover list` and `discover watch`. */
export function formatMembers(
  members: Member[],
  format: "table" | "json" | "gcomm" | "lines",
  galeraPort?: number,
): string {
  if (format === "json") return JSON.stringify(members, null, 2) + "\n";
  if (format === "gcomm") return gcommAddress(members, galeraPort) + "\n";
  if (format === "lines") {
    return members.map((m) => `${m.role} ${m.name} ${m.address}${m.health ? ` ${m.health}` : ""}`)
      .join("\n") + (members.length ? "\n" : "");
  }
  const rows = [
    ["ROLE", "NAME", "ADDRESS", "HEALTH/API"],
    ...members.map((m) => [m.role, m.name, m.address, m.health ?? m.api ?? ""]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n") +
    "\n";
}

function watchCommand() {
  const schema = v.object({
    registry: registryField,
    role: v.optional(role),
    exec: commandLine,
    interval: duration(100),
    debounce: duration(0),
    galeraPort: v.optional(integer(1, 65535)),
    ...commonFields,
  });
  const command = new Command("watch")
    .description(
      "run a command whenever membership changes (confd's role): GALERAD_MEMBERS and GALERAD_GCOMM in its environment",
    )
    .addOption(opt("--registry <url>", "registry URL", "REGISTRY"))
    .addOption(opt("--role <role>", "node or proxy (default: both)", "ROLE"))
    .addOption(opt("--exec <command>", "command to run on every change (no shell)", "EXEC"))
    .addOption(
      opt("--interval <duration>", "how often the registry is read", "INTERVAL").default("2s"),
    )
    .addOption(
      opt(
        "--debounce <duration>",
        "wait this long for membership to settle before running",
        "DEBOUNCE",
      ).default("1s"),
    )
    .addOption(opt("--galera-port <port>", "Galera port for GALERAD_GCOMM", "GALERA_PORT"));
  withCommonOptions(command);
  command.action(async () => {
    const o = await resolveOptions(command, schema);
    applyLogging(o);
    let pending: ReturnType<typeof setTimeout> | undefined;
    let running = false;
    let again: Member[] | null = null;
    const run = (members: Member[]) => {
      if (running) {
        again = members;
        return;
      }
      running = true;
      log.info("membership changed ({count} members): running {command}", {
        count: members.length,
        command: o.exec.join(" "),
      });
      const child = spawn(o.exec[0], o.exec.slice(1), {
        stdio: "inherit",
        env: {
          ...process.env,
          GALERAD_MEMBERS: formatMembers(members, "lines"),
          GALERAD_GCOMM: gcommAddress(members, o.galeraPort),
        },
      });
      const done = (code: number | null) => {
        if (code !== 0) log.warn("{command} exited with {code}", { command: o.exec[0], code });
        running = false;
        if (again) {
          const next = again;
          again = null;
          run(next);
        }
      };
      child.on(
        "error",
        (
          error,
        ) => (log.error("cannot run {command}: {error}", {
          command: o.exec[0],
          error: error.message,
        }),
          done(null)),
      );
      child.on("close", done);
    };
    const stop = watchMembers(o.registry, o.role as Role | undefined, o.interval, (members) => {
      clearTimeout(pending);
      pending = setTimeout(() => run(members), o.debounce);
    }, (error) => log.warn("cannot read the registry: {error}", { error: error.message }));
    onShutdownSignal(() => {
      stop();
      clearTimeout(pending);
      return Promise.resolve();
    });
  });
  return command;
}
