import { Command } from "@commander-js/extra-typings";
import { getLogger } from "@logtape/logtape";
import process from "node:process";
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import * as v from "valibot";
import { fetchTrusting, serveHttp } from "#runtime";
import { probeAgent } from "../proxy/probe.ts";
import type { TlsFiles } from "../runtime/types.ts";
import { readCaFile, readTlsFiles, serveWithNewTls } from "./tls_files.ts";
import { Agent } from "../agent/agent.ts";
import { Controls } from "../agent/controls.ts";
import { createAgentApp } from "../agent/api.ts";
import { StatusReader } from "../agent/status_reader.ts";
import { CatchUp } from "../agent/catch_up.ts";
import { WitnessEndpoint } from "../agent/witness.ts";
import {
  boolean,
  commandLine,
  duration,
  hostPort,
  integer,
  name,
  nonEmpty,
} from "../core/config_fields.ts";
import { isWildcardHost } from "../core/address.ts";
import { keepRegistered } from "../discover/keep_registered.ts";
import { registryField } from "../discover/registry_field.ts";
import {
  applyLogging,
  bindError,
  commonFields,
  loadPeerKeys,
  onShutdownSignal,
  opt,
  peerKeyOptions,
  readPassword,
  readSecretFile,
  withCommonOptions,
  withTlsOptions,
} from "./common.ts";
import { RuntimeFailure, UsageError } from "./errors.ts";
import { resolveOptions } from "./resolve_options.ts";
import { notify } from "./sd_notify.ts";
import { startWatchdog } from "../runtime/sd_notify.ts";

const log = getLogger(["galerad", "cli"]);
const DEBIAN_SOCKET = "/run/mysqld/mysqld.sock";

const schema = v.object({
  listen: hostPort(),
  mysqlSocket: v.optional(v.string()),
  mysqlHost: v.optional(nonEmpty),
  mysqlPort: integer(1, 65535),
  mysqlUser: nonEmpty,
  mysqlPassword: v.optional(v.string()),
  mysqlPasswordFile: v.optional(v.string()),
  interval: duration(10),
  connectTimeout: duration(10),
  queryTimeout: duration(10),
  maxAge: duration(10),
  availableWhenDonor: boolean,
  availableWhenReadOnly: boolean,
  maintenanceFile: v.optional(v.string()),
  apiUser: nonEmpty,
  apiPassword: v.optional(v.string()),
  apiPasswordFile: v.optional(v.string()),
  apiTlsCert: v.optional(v.string()),
  apiTlsKey: v.optional(v.string()),
  apiTlsOnly: boolean,
  agentCaFile: v.optional(v.string()),
  datadir: v.optional(v.string()),
  defaultsFile: v.optional(v.string()),
  mysqld: nonEmpty,
  startCommand: v.optional(commandLine),
  bootstrapCommand: v.optional(commandLine),
  stopCommand: v.optional(commandLine),
  operationTimeout: duration(100),
  register: v.optional(registryField),
  registerName: name,
  registerAddress: v.optional(v.pipe(v.string(), v.regex(/^.+:\d+$/, "expected HOST:PORT"))),
  registerHealth: v.optional(v.pipe(v.string(), v.url("expected a URL"))),
  registerTtl: duration(2000),
  registerGalera: v.optional(v.pipe(v.string(), v.regex(/^.+:\d+$/, "expected HOST:PORT"))),
  cluster: name,
  peerSecret: v.optional(v.string()),
  peerSecretFile: v.optional(v.string()),
  peerKeyFile: v.optional(v.string()),
  peerPublicKeys: v.optional(v.string()),
  voteListen: hostPort(),
  voteName: v.optional(name),
  stateFile: v.optional(v.string()),
  lease: duration(100),
  ...commonFields,
});

const flag = (flags: string, description: string, env: string) =>
  opt(flags, description, env).preset("true").default("false");

/** `galerad healthcheck`: the agent on each DB host. */
export function healthcheckCommand(): Command<[], Record<string, unknown>> {
  const command = new Command("healthcheck")
    .description("health agent for one Galera node: answers 200/503 and JSON status for proxies")
    .addOption(
      opt("--listen <host:port>", "where proxies and load balancers ask", "LISTEN").default(
        ":9200",
      ),
    )
    .addOption(
      opt(
        "--mysql-socket <path>",
        `local server socket (default ${DEBIAN_SOCKET} when it exists)`,
        "MYSQL_SOCKET",
      ),
    )
    .addOption(
      opt("--mysql-host <host>", "local server host, when not using the socket", "MYSQL_HOST"),
    )
    .addOption(opt("--mysql-port <port>", "local server port", "MYSQL_PORT").default("3306"))
    .addOption(
      opt("--mysql-user <user>", "user that reads status (needs no privileges)", "MYSQL_USER")
        .default("root"),
    )
    .addOption(
      opt(
        "--mysql-password <password>",
        "its password (prefer --mysql-password-file)",
        "MYSQL_PASSWORD",
      ),
    )
    .addOption(
      opt(
        "--mysql-password-file <file>",
        "file whose first line is the password",
        "MYSQL_PASSWORD_FILE",
      ),
    )
    .addOption(
      opt("--interval <duration>", "time between status readings", "INTERVAL").default("500ms"),
    )
    .addOption(
      opt(
        "--connect-timeout <duration>",
        "time allowed to connect to the server",
        "CONNECT_TIMEOUT",
      ).default("1s"),
    )
    .addOption(
      opt("--query-timeout <duration>", "time allowed for the status queries", "QUERY_TIMEOUT")
        .default("1s"),
    )
    .addOption(
      opt("--max-age <duration>", "a reading older than this counts as unhealthy", "MAX_AGE")
        .default("3s"),
    )
    .addOption(
      flag(
        "--available-when-donor [bool]",
        "a donor (state 2) counts as healthy",
        "AVAILABLE_WHEN_DONOR",
      ),
    )
    .addOption(
      flag(
        "--available-when-read-only [bool]",
        "a read_only node counts as healthy",
        "AVAILABLE_WHEN_READ_ONLY",
      ),
    )
    .addOption(
      opt(
        "--maintenance-file <path>",
        "while this file exists the node is in maintenance (its first line is the message)",
        "MAINTENANCE_FILE",
      ),
    )
    .addOption(
      opt("--api-user <name>", "user for the controls (maintenance, bootstrap)", "API_USER")
        .default("admin"),
    )
    .addOption(
      opt(
        "--api-password <password>",
        "password for the controls; without one they are off",
        "API_PASSWORD",
      ),
    )
    .addOption(
      opt(
        "--api-password-file <file>",
        "file whose first line is the controls' password",
        "API_PASSWORD_FILE",
      ),
    );
  command
    .addOption(
      opt(
        "--datadir <dir>",
        "the server's datadir, where grastate.dat lives (for bootstrap)",
        "DATADIR",
      ),
    )
    .addOption(
      opt(
        "--defaults-file <file>",
        "the server's option file, used by --wsrep-recover and to recognise its process",
        "DEFAULTS_FILE",
      ),
    )
    .addOption(
      opt("--mysqld <path>", "server binary for --wsrep-recover", "MYSQLD").default("mariadbd"),
    )
    .addOption(
      opt(
        "--start-command <command>",
        'starts the server as a joiner, e.g. "systemctl start mariadb" (run without a shell)',
        "START_COMMAND",
      ),
    )
    .addOption(
      opt(
        "--bootstrap-command <command>",
        "starts the server as a new cluster, e.g. galera_new_cluster",
        "BOOTSTRAP_COMMAND",
      ),
    )
    .addOption(
      opt(
        "--stop-command <command>",
        'stops the server, e.g. "systemctl stop mariadb"',
        "STOP_COMMAND",
      ),
    )
    .addOption(
      opt(
        "--operation-timeout <duration>",
        "upper bound for a start, stop or recovery (an SST can take long)",
        "OPERATION_TIMEOUT",
      ).default("30m"),
    );
  command
    .addOption(
      opt(
        "--register <url>",
        "register this node (role node) in a registry: etcd://… or consul://…",
        "REGISTER",
      ),
    )
    .addOption(
      opt("--register-name <name>", "the node's name in the registry", "REGISTER_NAME").default(
        hostname().split(".")[0] || "galera",
      ),
    )
    .addOption(
      opt(
        "--register-address <host:port>",
        "the node's MySQL address as clients reach it (default HOSTNAME:--mysql-port)",
        "REGISTER_ADDRESS",
      ),
    )
    .addOption(
      opt(
        "--register-health <url>",
        "this agent's URL as proxies reach it (default from --listen)",
        "REGISTER_HEALTH",
      ),
    )
    .addOption(
      opt(
        "--register-galera <host:port>",
        "the node's Galera address, when not HOST:4567 (for gcomm:// lists)",
        "REGISTER_GALERA",
      ),
    )
    .addOption(
      opt(
        "--register-ttl <duration>",
        "registration expires this long after the last renewal",
        "REGISTER_TTL",
      ).default("10s"),
    );
  command
    .addOption(
      opt(
        "--peer-secret-file <file>",
        "the proxies' peer secret(s), one per line: with it this agent votes on the active node (--quorum agents)",
        "PEER_SECRET_FILE",
      ),
    )
    .addOption(
      opt("--peer-secret <secrets>", "the same, comma-separated (prefer the file)", "PEER_SECRET"),
    )
    .addOption(
      opt("--vote-listen <host:port>", "UDP address of the vote", "VOTE_LISTEN").default(":9201"),
    )
    .addOption(
      opt(
        "--vote-name <name>",
        "the backend name proxies give this node (checked when set)",
        "VOTE_NAME",
      ),
    )
    .addOption(
      opt("--cluster <name>", "Galera cluster name, as the proxies' --cluster", "CLUSTER")
        .default("galera"),
    )
    .addOption(
      opt(
        "--state-file <file>",
        "where the vote is kept across restarts (default with a secret: /var/lib/galerad/agent.state.json)",
        "STATE_FILE",
      ),
    )
    .addOption(
      opt(
        "--lease <duration>",
        "the longest lease this agent grants (the proxies' --lease, or more)",
        "LEASE",
      ).default("2s"),
    );
  withTlsOptions(
    command,
    "health, status and controls",
    "the other agents' https:// URLs (votes probe them)",
  );
  for (const option of peerKeyOptions()) command.addOption(option);
  withCommonOptions(command);
  command.action(async () => {
    const options = await resolveOptions(command, schema);
    applyLogging(options);
    let mysqlPassword = options.mysqlPassword ?? "";
    if (options.mysqlPasswordFile) {
      mysqlPassword = readSecretFile("--mysql-password-file", options.mysqlPasswordFile);
    }
    const apiPassword = readPassword(options);
    const socketPath = options.mysqlSocket ??
      (options.mysqlHost === undefined && existsSync(DEBIAN_SOCKET) ? DEBIAN_SOCKET : undefined);
    let agent: Agent | undefined = undefined;
    const target = {
      socketPath,
      host: options.mysqlHost ?? "127.0.0.1",
      port: options.mysqlPort,
      user: options.mysqlUser,
      password: mysqlPassword,
      connectTimeoutMs: options.connectTimeout,
      queryTimeoutMs: options.queryTimeout,
    };
    const reader = new StatusReader(target, (reason) => agent?.lost(reason));
    agent = new Agent(reader, {
      intervalMs: options.interval,
      maxAgeMs: options.maxAge,
      availableWhenDonor: options.availableWhenDonor,
      availableWhenReadOnly: options.availableWhenReadOnly,
      maintenanceFile: options.maintenanceFile,
      localHost: socketPath !== undefined ||
        ["127.0.0.1", "localhost", "::1"].includes(options.mysqlHost ?? "127.0.0.1"),
    });
    await agent.start(); // the first answer is a real reading, never "no reading yet"
    let tls = await readTlsFiles(options);
    const ca = readCaFile(options.agentCaFile);
    if (options.peerKeyFile && !options.voteName) {
      throw new UsageError(
        "--peer-key-file needs --vote-name: the name proxies address this agent by (its backend name), which it signs as",
      );
    }
    const keys = await loadPeerKeys(options, options.voteName);
    const vote = keys
      ? new WitnessEndpoint(
        {
          listen: options.voteListen,
          cluster: options.cluster,
          name: options.voteName ?? null,
          keys,
          timers: {
            leaseMs: options.lease,
            guardMs: Math.min(300, Math.round(options.lease / 4)),
            marginMs: Math.max(100, Math.round(options.lease / 10)),
            settleMs: options.lease,
            startupHoldMs: 0,
          },
          stateFile: options.stateFile ??
            `/var/lib/galerad/agent-${options.voteListen.port}.state.json`,
          // A vote is only ever cast on a proxy's proposal, which has its own rise/fall: the
          // agent's judgement of it can be quick without moving anything on a single blip.
          intervalMs: Math.min(options.interval, 250),
          timeoutMs: 1000,
          rise: 1,
          fall: 1,
        },
        ca === null
          ? undefined
          : (url, mode, timeoutMs) => probeAgent(url, mode, timeoutMs, fetchTrusting(ca)),
      )
      : null;
    await vote?.start().catch((error) => {
      throw new RuntimeFailure(bindError("the vote", options.voteListen, error, "--vote-listen"));
    });
    const app = createAgentApp(
      agent,
      apiPassword ? { user: options.apiUser, password: apiPassword } : null,
      new Controls(agent, {
        datadir: options.datadir,
        defaultsFile: options.defaultsFile,
        mysqld: options.mysqld,
        startCommand: options.startCommand,
        bootstrapCommand: options.bootstrapCommand,
        stopCommand: options.stopCommand,
        operationTimeoutMs: options.operationTimeout,
      }),
      () => (vote ? { port: vote.port, ...vote.counters } : null),
      new CatchUp(target),
    );
    const serve = (files: TlsFiles | null, port = options.listen.port) =>
      serveHttp({ ...options.listen, port }, app.fetch, files ?? undefined).catch((error) => {
        throw new RuntimeFailure(bindError("health probes", options.listen, error, "--listen"));
      });
    let server = await serve(tls);
    log.info("agent listening on {host}:{port} for {target}", {
      host: options.listen.host,
      port: server.port,
      target: socketPath
        ? `socket ${socketPath}`
        : `${options.mysqlHost ?? "127.0.0.1"}:${options.mysqlPort}`,
    });
    const registration = options.register
      ? await keepRegistered(options.register, {
        role: "node",
        name: options.registerName,
        address: options.registerAddress ?? `${hostname()}:${options.mysqlPort}`,
        health: options.registerHealth ??
          `http://${
            isWildcardHost(options.listen.host) ? hostname() : options.listen.host
          }:${server.port}`,
        ...(options.registerGalera ? { galera: options.registerGalera } : {}),
      }, options.registerTtl)
      : null;
    // SIGHUP (never the default, which kills): new certificate files; the maintenance file is
    // read at every poll anyway; other options need a restart.
    process.on("SIGHUP", async () => {
      try {
        const now = await serveWithNewTls({ server, tls }, await readTlsFiles(options), serve);
        if (!now.changed) {
          return log.info("SIGHUP: certificate files unchanged; other options need a restart");
        }
        ({ server, tls } = now);
        log.info("SIGHUP: certificate reloaded ({scheme})", { scheme: tls ? "https" : "http" });
      } catch (error) {
        log.error("SIGHUP: reload refused, the running certificate stays: {message}", {
          message: error instanceof Error ? error.message : String(error),
        });
      }
    });
    const stopWatchdog = startWatchdog();
    notify(`READY=1\nSTATUS=${agent.current().verdict.reason}`);
    onShutdownSignal(async () => {
      notify("STOPPING=1");
      stopWatchdog();
      await registration?.close();
      vote?.stop();
      agent.stop();
      await server.close();
    });
  });
  return command;
}
