import { Command } from "@commander-js/extra-typings";
import { getLogger } from "@logtape/logtape";
import { availableParallelism, hostname } from "node:os";
import * as v from "valibot";
import { ENGINE_ENV, fetchTrusting, restartWithEnv, serveHttp } from "#runtime";
import process from "node:process";
import { missingEnv } from "../core/engine_env.ts";
import type { HttpServer, TlsFiles } from "../runtime/types.ts";
import { readCaFile, readTlsFiles, serveWithNewTls } from "./tls_files.ts";
import {
  backendList,
  boolean,
  duration,
  hostPort,
  integer,
  name,
  nameList,
  nonEmpty,
  peerList,
  splitList,
  threadCount,
} from "../core/config_fields.ts";
import { formatHostPort, isWildcardHost, parseIpv4 } from "../core/address.ts";
import { READER_FALLBACKS } from "../core/reader_choice.ts";
import { DEFAULT_PEER_PORT } from "../core/peer_spec.ts";
import { followRegistry } from "../discover/follow_registry.ts";
import { keepRegistered } from "../discover/keep_registered.ts";
import { registryField } from "../discover/registry_field.ts";
import { createApi, createHealthApp } from "../proxy/api.ts";
import { ListenError, Proxy } from "../proxy/proxy.ts";
import { threadPlan } from "../core/threads.ts";
import { DATA_PLANE_KINDS } from "../dataplane/plane.ts";
import {
  applyLogging,
  bindError,
  commonFields,
  loadPeerKeys,
  onReloadSignal,
  onShutdownSignal,
  opt,
  peerKeyOptions,
  readPassword,
  withCommonOptions,
  withTlsOptions,
} from "./common.ts";
import { RuntimeFailure, UsageError } from "./errors.ts";
import { KernelPathError } from "../dataplane/nft_path.ts";
import { reloadPlan } from "./proxy_reload.ts";
import { resolveOptions } from "./resolve_options.ts";
import { notify } from "./sd_notify.ts";
import { startWatchdog } from "../runtime/sd_notify.ts";

const log = getLogger(["galerad", "cli"]);

const schema = v.object({
  listen: hostPort(),
  backend: backendList,
  apiListen: hostPort(),
  readerListen: v.optional(hostPort()),
  readerFallback: v.picklist(READER_FALLBACKS, "expected active or refuse"),
  healthListen: hostPort(),
  apiUser: nonEmpty,
  apiPassword: v.optional(v.string()),
  apiPasswordFile: v.optional(v.string()),
  apiTlsCert: v.optional(v.string()),
  apiTlsKey: v.optional(v.string()),
  apiTlsOnly: boolean,
  agentCaFile: v.optional(v.string()),
  interval: duration(10),
  timeout: duration(10),
  rise: integer(1, 100),
  fall: integer(1, 100),
  connectTimeout: duration(10),
  maxConnecting: integer(0, 100_000),
  keepalive: duration(0),
  clientIdleTimeout: duration(0),
  backendIdleTimeout: duration(0),
  threads: threadCount(64),
  dataPlane: v.picklist(DATA_PLANE_KINDS, "expected auto, epoll, sockets or nft"),
  shutdownTimeout: duration(0),
  shutdownDelay: duration(0),
  name: name,
  cluster: name,
  peers: peerList,
  voters: v.optional(nameList),
  peerListen: v.optional(hostPort()),
  peerSecret: v.optional(v.string()),
  peerSecretFile: v.optional(v.string()),
  peerKeyFile: v.optional(v.string()),
  peerPublicKeys: v.optional(v.string()),
  stateFile: v.optional(v.string()),
  gossipInterval: duration(10),
  quorum: v.picklist(
    ["auto", "agents", "proxies", "none"],
    "expected auto, agents, proxies or none",
  ),
  lease: duration(100),
  peerTimeout: v.optional(duration(100)),
  startupWait: duration(0),
  catchUpTimeout: duration(0),
  metricsPublic: boolean,
  sendProxyV2: boolean,
  discover: v.optional(registryField),
  register: v.optional(registryField),
  discoverInterval: duration(100),
  registerTtl: duration(2000),
  advertiseApi: v.optional(v.pipe(v.string(), v.url("expected a URL like http://10.0.0.11:8080"))),
  checkConfig: boolean,
  ...commonFields,
});

/** `galerad proxy`: options and wiring only; the work is in src/proxy/. */
export function proxyCommand(): Command<[], Record<string, unknown>> {
  const command = new Command("proxy")
    .description("route every client connection to one sticky, healthy Galera node")
    .addOption(
      opt("--listen <host:port>", "where MySQL clients connect", "LISTEN").default("0.0.0.0:3306"),
    )
    .addOption(
      opt(
        "--backend <spec>",
        "a Galera node, NAME=HOST:PORT[,health=URL] (repeatable; agent defaults to http://HOST:9200)",
        "BACKEND",
      )
        .argParser((
          value: string,
          previous: string[] | undefined,
        ) => [...(previous ?? []), ...splitList(value)])
        .default([] as string[]),
    )
    .addOption(
      opt(
        "--reader-listen <host:port>",
        "reader port (off by default): each client goes to a healthy node that is not the " +
          "active one, fewest reader sessions first (Switchboard's inactive_mysql_port, " +
          "ProxySQL's reader hostgroup, MaxScale's readconnroute router_options=slave)",
        "READER_LISTEN",
      ),
    )
    .addOption(
      opt(
        "--reader-fallback <mode>",
        "when only the active node is healthy: active (readers go to it) or refuse (and " +
          "reader sessions on a node are severed when it becomes the active one)",
        "READER_FALLBACK",
      ).default("active"),
    )
    .addOption(
      opt("--api-listen <host:port>", "JSON API (Basic Auth)", "API_LISTEN").default(":8080"),
    )
    .addOption(
      opt(
        "--health-listen <host:port>",
        "load balancer health port: / always 200, /ready 503 without an active node",
        "HEALTH_LISTEN",
      ).default(":1936"),
    )
    .addOption(opt("--api-user <name>", "API user name", "API_USER").default("admin"))
    .addOption(
      opt(
        "--api-password <password>",
        "API password (prefer --api-password-file; generated and logged when neither is set)",
        "API_PASSWORD",
      ),
    )
    .addOption(
      opt(
        "--api-password-file <file>",
        "file whose first line is the API password",
        "API_PASSWORD_FILE",
      ),
    )
    .addOption(
      opt("--interval <duration>", "time between health probes of each node", "INTERVAL").default(
        "500ms",
      ),
    )
    .addOption(
      opt("--timeout <duration>", "a probe with no complete answer by then has failed", "TIMEOUT")
        .default("1s"),
    )
    .addOption(
      opt(
        "--rise <n>",
        "consecutive good probes before an unhealthy node counts as healthy",
        "RISE",
      ).default("2"),
    )
    .addOption(
      opt(
        "--fall <n>",
        "consecutive failed probes before a healthy node counts as unhealthy",
        "FALL",
      ).default("2"),
    )
    .addOption(
      opt(
        "--connect-timeout <duration>",
        "time allowed to connect to the active node",
        "CONNECT_TIMEOUT",
      ).default("2s"),
    )
    .addOption(
      opt(
        "--max-connecting <n>",
        "connections to one node at a time that it has not greeted yet; more wait their " +
          "turn within --connect-timeout, so a reconnect storm stays inside the node's listen " +
          "backlog (back_log, 80 by default in MariaDB, shared by every proxy); 0: no limit",
        "MAX_CONNECTING",
      ).default("32"),
    )
    .addOption(
      opt(
        "--client-idle-timeout <duration>",
        "close a session whose client sent nothing for this long (0: never; HAProxy's timeout client)",
        "CLIENT_IDLE_TIMEOUT",
      ).default("0"),
    )
    .addOption(
      opt(
        "--backend-idle-timeout <duration>",
        "close a session whose backend sent nothing for this long (0: never; HAProxy's timeout server)",
        "BACKEND_IDLE_TIMEOUT",
      ).default("0"),
    )
    .addOption(
      opt(
        "--threads <count>",
        "threads carrying client sessions: auto (2, then one more at a time while they are " +
          "busy, up to one per CPU and at most 16) or 1-64; each listens on the proxy port " +
          "(SO_REUSEPORT), decisions stay on the main thread",
        "THREADS",
      ).default("auto"),
    )
    .addOption(
      opt(
        "--data-plane <kind>",
        "what carries the bytes: epoll (threads on Linux's epoll through libc, cheapest per " +
          "packet), sockets (the runtime's own sockets, on the main thread only), nft (Linux " +
          "forwards remote IPv4 clients by NAT, galerad points the rule; needs CAP_NET_ADMIN, " +
          "docs/KERNEL_PLANE.md) or auto (epoll where it loads)",
        "DATA_PLANE",
      ).default("auto"),
    )
    .addOption(
      opt(
        "--keepalive <duration>",
        "TCP keepalive idle time on both sides; 0 turns it off",
        "KEEPALIVE",
      ).default("30s"),
    )
    .addOption(
      opt(
        "--shutdown-timeout <duration>",
        "on SIGTERM, how long open sessions may finish before they are closed",
        "SHUTDOWN_TIMEOUT",
      ).default("10s"),
    )
    .addOption(
      opt(
        "--shutdown-delay <duration>",
        "on SIGTERM, how long /ready answers 503 while the proxy still accepts and serves, so " +
          "a load balancer in front moves new clients away first (Switchboard's shutdown_delay)",
        "SHUTDOWN_DELAY",
      ).default("5s"),
    );
  command
    .addOption(
      opt("--name <name>", "this proxy's stable name among its peers", "NAME").default(
        hostname().split(".")[0] || "galerad",
      ),
    )
    .addOption(
      opt(
        "--cluster <name>",
        "Galera cluster name; peers of another cluster are ignored",
        "CLUSTER",
      ).default("galera"),
    )
    .addOption(
      opt(
        "--peers <list>",
        `proxies to agree with, NAME=HOST[:PORT] separated by commas (port ${DEFAULT_PEER_PORT}; may include this proxy)`,
        "PEERS",
      )
        .argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value])
        .default([] as string[]),
    )
    .addOption(
      opt(
        "--peer-listen <host:port>",
        `UDP address for gossip (default: this proxy's entry in --peers, else :${DEFAULT_PEER_PORT})`,
        "PEER_LISTEN",
      ),
    )
    .addOption(
      opt(
        "--peer-secret <secrets>",
        "shared gossip secret(s), comma-separated, the first signs (prefer --peer-secret-file)",
        "PEER_SECRET",
      ),
    )
    .addOption(
      opt(
        "--peer-secret-file <file>",
        "file with one shared secret per line; the first signs, all verify",
        "PEER_SECRET_FILE",
      ),
    )
    .addOption(
      opt(
        "--state-file <file>",
        "where the register is kept across restarts (default with --peers: /var/lib/galerad/NAME.state.json)",
        "STATE_FILE",
      ),
    )
    .addOption(
      opt(
        "--gossip-interval <duration>",
        "how often this proxy asks a voter for its lease, until the voter renewed it (a settled tier renews every quarter lease; any change goes out at once; a party that does not vote hears from it every quarter lease)",
        "GOSSIP_INTERVAL",
      ).default("200ms"),
    )
    .addOption(
      opt(
        "--quorum <mode>",
        "who votes on the active node: agents (the backends' galerad agents), proxies (the --peers, an odd number), none (AVAILABILITY FIRST: can route two proxies to two nodes), or auto (agents when every agent votes, else proxies)",
        "QUORUM",
      ).default("auto"),
    )
    .addOption(
      opt(
        "--voters <names>",
        "with --quorum proxies: the proxies that vote, NAME,NAME,… from --peers (default: all); in a large tier, 3, 5 or 7 voters keep the agreement's cost linear in its size",
        "VOTERS",
      ),
    )
    .addOption(
      opt(
        "--lease <duration>",
        "how long a majority's grant lets this proxy serve; one that hears no majority stops after it",
        "LEASE",
      ).default("2s"),
    )
    .addOption(
      opt(
        "--peer-timeout <duration>",
        "replaced by --lease (still accepted as it)",
        "PEER_TIMEOUT",
      ),
    )
    .addOption(
      opt(
        "--startup-wait <duration>",
        "how long new sessions wait at start for a lease before they are refused",
        "STARTUP_WAIT",
      ).default("2s"),
    )
    .addOption(
      opt(
        "--catch-up-timeout <duration>",
        "after a move to another node, how long new sessions wait for it to apply the last " +
          "writes of the node left (a causal read through its agent); 0 does not wait",
        "CATCH_UP_TIMEOUT",
      ).default("10s"),
    );
  command.addOption(
    opt(
      "--metrics-public [bool]",
      "serve /metrics on the API port without authentication",
      "METRICS_PUBLIC",
    ).preset("true").default("false"),
  );
  command.addOption(
    opt(
      "--send-proxy-v2 [bool]",
      "send a PROXY protocol v2 header to backends, so they see client addresses (MariaDB: proxy_protocol_networks)",
      "SEND_PROXY_V2",
    ).preset("true").default("false"),
  );
  command.addOption(
    opt(
      "--advertise-api <url>",
      "this proxy's API URL as peers' springboards link it (default from --api-listen)",
      "ADVERTISE_API",
    ),
  );
  command
    .addOption(
      opt(
        "--discover <url>",
        "take backends (role node) and peers (role proxy) from a registry and follow it",
        "DISCOVER",
      ),
    )
    .addOption(
      opt("--discover-interval <duration>", "how often the registry is read", "DISCOVER_INTERVAL")
        .default("2s"),
    )
    .addOption(
      opt("--register <url>", "register this proxy (role proxy) in a registry", "REGISTER"),
    )
    .addOption(
      opt(
        "--register-ttl <duration>",
        "registration expires this long after the last renewal",
        "REGISTER_TTL",
      ).default("10s"),
    );
  command.addOption(
    opt(
      "--check-config [bool]",
      "validate the options (flags, environment, --config file) and exit: 0 valid, 2 not",
      "CHECK_CONFIG",
    ).preset("true").default("false"),
  );
  withTlsOptions(command, "the API and dashboard", "agents whose health URL is https://");
  for (const option of peerKeyOptions()) command.addOption(option);
  withCommonOptions(command);
  /** The options from every source, checked as a start would check them (UsageError if not). */
  let started = false;
  const load = async () => {
    const options = await resolveOptions(command, schema, { aliases: { backends: "backend" } });
    // At start, before the checks below, which may warn; a reload applies the new logging only
    // once the whole file has passed them (a bad file changes nothing).
    if (!started) applyLogging(options);
    if (options.backend.length === 0 && !options.discover) {
      throw new UsageError(
        "missing --backend (or --discover): give at least one NAME=HOST:PORT[,health=URL]",
      );
    }
    checkKernelPlane(options);
    voterList(options);
    const peers = await peerSettings(options);
    const tls = await readTlsFiles(options);
    const ca = readCaFile(options.agentCaFile);
    return { options, peers, password: readPassword(options), tls, ca };
  };
  command.action(async () => {
    // First, before anything is read or logged: the engine's settings apply only from the start.
    const engine = missingEnv(ENGINE_ENV, process.env);
    let notRestarted: unknown = null;
    try {
      if (engine) restartWithEnv(engine);
    } catch (error) {
      notRestarted = error;
    }
    const { options, peers, password: given, tls, ca } = await load();
    if (notRestarted) {
      log.warn("could not start again with {settings}, going on without them: {reason}", {
        settings: Object.entries(engine!).map(([k, v]) => `${k}=${v}`).join(" "),
        reason: notRestarted instanceof Error ? notRestarted.message : String(notRestarted),
      });
    }
    if (options.checkConfig) {
      console.log(
        `galerad: the configuration is valid: ${options.backend.length} backends${
          options.discover ? " and a registry" : ""
        }, ${peers.peers ? `${peers.peers.peers.length} peers` : "no peers"}`,
      );
      return;
    }
    started = true;
    let password = given;
    if (!password) {
      password = randomPassword();
      log.warn("no --api-password given; generated one for user {user}: {password}", {
        user: options.apiUser,
        password,
      });
    }
    await runProxy(options, password, peers, { tls, ca }, load);
  });
  return command;
}

type ProxyConfig = v.InferOutput<typeof schema>;

/**
 * What the kernel path cannot do, refused at start: the kernel forwards packets as they are, so
 * it cannot add a PROXY header nor time out a session it never sees; it routes IPv4 only.
 */
function checkKernelPlane(options: ProxyConfig): void {
  if (options.dataPlane !== "nft") return;
  const clash = options.sendProxyV2
    ? "--send-proxy-v2 (the kernel forwards packets as they are: it cannot add a PROXY header)"
    : options.clientIdleTimeout > 0
    ? "--client-idle-timeout (the kernel's flows never pass through galerad)"
    : options.backendIdleTimeout > 0
    ? "--backend-idle-timeout (the kernel's flows never pass through galerad)"
    : null;
  if (clash) {
    throw new UsageError(
      `invalid --data-plane nft with ${clash}; drop that option or use --data-plane epoll`,
    );
  }
  const host = options.listen.host;
  if (!isWildcardHost(host) && !parseIpv4(host)) {
    throw new UsageError(
      `invalid --listen ${
        formatHostPort(options.listen)
      } with --data-plane nft: expected an IPv4 address or 0.0.0.0 (the kernel path routes IPv4)`,
    );
  }
}

/** The address others should use: a wildcard listen address becomes this host's name. */
function advertisedHost(address: { host: string; port: number }) {
  return { host: isWildcardHost(address.host) ? hostname() : address.host, port: address.port };
}

/** The API URL peers are told: the API address, or, when it listens on all interfaces, the host peers reach. */
function advertisedApi(api: { host: string; port: number }, peer: { host: string }): string {
  const host = !isWildcardHost(api.host)
    ? api.host
    : !isWildcardHost(peer.host)
    ? peer.host
    : hostname();
  return `http://${host.includes(":") ? `[${host}]` : host}:${api.port}`;
}

/** Resolves the gossip settings: peers without this proxy, listen address, key ring, state file. */
async function peerSettings(options: ProxyConfig) {
  const others = options.peers.filter((p) => p.name !== options.name);
  if (options.peers.length > 0 && others.length === 0) {
    throw new UsageError(
      `invalid --peers: it lists no proxy but this one ("${options.name}"); give the other proxies, or leave --peers out to run alone`,
    );
  }
  const hasSecret = options.peerSecret !== undefined || options.peerSecretFile !== undefined;
  const wantsWire = others.length > 0 || options.quorum === "agents" ||
    (hasSecret && (options.discover !== undefined || options.quorum === "auto"));
  if (!wantsWire) return { peers: undefined, stateFile: options.stateFile };
  const keys = await loadPeerKeys(options, options.name);
  if (!keys) {
    throw new UsageError(
      options.quorum === "agents" && others.length === 0
        ? "missing --peer-secret-file (or GALERAD_PEER_SECRET): --quorum agents signs its lease requests to the agents"
        : "missing --peer-secret-file (or GALERAD_PEER_SECRET): peers need a shared secret to sign gossip",
    );
  }
  const own = options.peers.find((p) => p.name === options.name);
  // Without peers the socket only talks to agents, which answer to where a request came from:
  // any free port will do.
  const listen = options.peerListen ??
    (own
      ? { host: own.host, port: own.port }
      : { host: "0.0.0.0", port: others.length > 0 ? DEFAULT_PEER_PORT : 0 });
  return {
    stateFile: options.stateFile ?? `/var/lib/galerad/${options.name}.state.json`,
    peers: {
      listen,
      peers: others,
      keys,
      intervalMs: options.gossipInterval,
      api: options.advertiseApi ?? advertisedApi(options.apiListen, listen),
    },
  };
}

/** `--voters`: only with `--quorum proxies`, and only proxies this one knows (or itself). */
function voterList(options: ProxyConfig): string[] | undefined {
  const voters = options.voters;
  if (!voters) return undefined;
  if (options.quorum !== "proxies") {
    throw new UsageError(
      `invalid --voters ${
        voters.join(",")
      }: only with --quorum proxies (it is ${options.quorum}); agents vote as the backends`,
    );
  }
  const known = new Set([options.name, ...options.peers.map((p) => p.name)]);
  const stranger = options.peers.length > 0 && voters.find((name) => !known.has(name));
  if (stranger) {
    throw new UsageError(
      `invalid --voters: "${stranger}" is not in --peers (${[...known].join(", ")})`,
    );
  }
  return voters;
}

/** Lease timers from the flags; the guard and margin scale with the lease. */
function leaseTimers(options: ProxyConfig) {
  const leaseMs = options.peerTimeout ?? options.lease;
  if (options.peerTimeout !== undefined) {
    log.warn("--peer-timeout is replaced by --lease; taking {ms}ms as the lease", { ms: leaseMs });
  }
  if (leaseMs < 4 * options.gossipInterval) {
    throw new UsageError(
      `invalid --lease ${leaseMs}ms: expected at least 4 times --gossip-interval (${
        4 * options.gossipInterval
      }ms), so a lost datagram or two never costs the lease`,
    );
  }
  return {
    leaseMs,
    guardMs: Math.min(300, Math.round(leaseMs / 4)),
    marginMs: Math.max(100, Math.round(leaseMs / 10)),
    settleMs: leaseMs,
    startupHoldMs: options.startupWait,
  };
}

async function runProxy(
  options: ProxyConfig,
  password: string,
  peers: Awaited<ReturnType<typeof peerSettings>>,
  files: { tls: TlsFiles | null; ca: string | null },
  reread: () => Promise<{ options: ProxyConfig; tls: TlsFiles | null }>,
): Promise<void> {
  const proxy = new Proxy({
    listen: options.listen,
    backends: options.backend,
    intervalMs: options.interval,
    timeoutMs: options.timeout,
    rise: options.rise,
    fall: options.fall,
    connectTimeoutMs: options.connectTimeout,
    maxConnecting: options.maxConnecting,
    keepAliveMs: options.keepalive,
    clientIdleTimeoutMs: options.clientIdleTimeout,
    backendIdleTimeoutMs: options.backendIdleTimeout,
    ...threadPlan(options.threads, availableParallelism()),
    dataPlane: options.dataPlane,
    shutdownTimeoutMs: options.shutdownTimeout,
    shutdownDelayMs: options.shutdownDelay,
    name: options.name,
    cluster: options.cluster,
    stateFile: peers.stateFile,
    peers: peers.peers,
    quorum: options.quorum,
    voters: voterList(options),
    timers: leaseTimers(options),
    sendProxyV2: options.sendProxyV2,
    catchUpTimeoutMs: options.catchUpTimeout,
    discovering: options.discover !== undefined,
    readerListen: options.readerListen,
    readerFallback: options.readerFallback,
    fetch: fetchTrusting(files.ca),
  });
  // Signals are handled from the start: a SIGTERM while the proxy is still starting waits for
  // the start to finish (or fail), then shuts down what is up.
  const auth = { user: options.apiUser, password };
  const apiOptions = { metricsPublic: options.metricsPublic };
  const api = { tls: files.tls };
  const startup = startProxy(proxy, options, auth, apiOptions, peers, files.tls);
  let running = options;
  let reloading: Promise<void> | null = null;
  onReloadSignal(() => {
    reloading ??= reload().finally(() => (reloading = null));
  });
  /** SIGHUP: the config file again; what can change live changes, a bad file changes nothing. */
  async function reload(): Promise<void> {
    notify("RELOADING=1");
    try {
      const { options: next, tls } = await reread();
      const nextPassword = readPassword(next) ?? auth.password;
      const plan = reloadPlan(running, next);
      applyLogging(next);
      proxy.retune(plan.patch);
      if (plan.backends && !next.discover) proxy.setBackends(plan.backends, "config");
      auth.user = next.apiUser;
      auth.password = nextPassword;
      apiOptions.metricsPublic = next.metricsPublic;
      const up = await startup;
      const now = await serveWithNewTls(
        { server: up.api, tls: api.tls },
        tls,
        (files, port) =>
          serveApi(
            proxy,
            { ...options, apiListen: { host: options.apiListen.host, port } },
            auth,
            apiOptions,
            files,
          ),
      );
      if (now.changed) {
        up.api = now.server;
        api.tls = now.tls;
        log.info("API certificate reloaded ({scheme})", { scheme: tls ? "https" : "http" });
      }
      running = {
        ...next,
        ...Object.fromEntries(plan.restartOnly.map((k) => [k, running[k as keyof ProxyConfig]])),
      };
      proxy.configState = {
        generation: proxy.configState.generation + 1,
        loadedAt: Date.now(),
        lastReloadError: null,
      };
      const later = plan.restartOnly.length > 0
        ? `; ${plan.restartOnly.join(", ")} changed and take effect at the next restart`
        : "";
      log.info("configuration reloaded (generation {generation}){later}", {
        generation: proxy.configState.generation,
        later,
      });
      proxy.events.push({
        time: Date.now(),
        kind: "config",
        message: `configuration reloaded (generation ${proxy.configState.generation})${later}`,
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      proxy.configState = {
        ...proxy.configState,
        lastReloadError: { at: new Date().toISOString(), message },
      };
      log.error("reload refused, the running configuration stays: {message}", { message });
    } finally {
      notify("READY=1");
    }
  }
  const stopWatchdog = startWatchdog();
  onShutdownSignal(async (signal) => {
    notify("STOPPING=1");
    stopWatchdog();
    log.info("{signal}: draining", { signal });
    const up = await startup.catch(() => null);
    up?.stopDiscovery();
    await up?.registration?.close();
    await proxy.shutdown();
    await Promise.all([up?.api.close(), up?.health.close()]);
    log.info("stopped");
  });
  await startup;
  // systemd's Type=notify: ready once the ports are bound and the first choice is made.
  await proxy.whenReady();
  notify(`READY=1\nSTATUS=${proxy.active ? `routing to ${proxy.active}` : proxy.activeReason}`);
}

/** The API and dashboard listener, over HTTPS when `tls` is given. */
async function serveApi(
  proxy: Proxy,
  options: ProxyConfig,
  auth: { user: string; password: string },
  apiOptions: { metricsPublic: boolean },
  tls: TlsFiles | null,
): Promise<HttpServer> {
  return await serveHttp(
    options.apiListen,
    createApi(proxy, auth, apiOptions).fetch,
    tls ?? undefined,
  ).catch((error) => {
    throw new RuntimeFailure(bindError("the API", options.apiListen, error, "--api-listen"));
  });
}

async function startProxy(
  proxy: Proxy,
  options: ProxyConfig,
  auth: { user: string; password: string },
  apiOptions: { metricsPublic: boolean },
  peers: Awaited<ReturnType<typeof peerSettings>>,
  tls: TlsFiles | null,
) {
  try {
    await proxy.start();
  } catch (error) {
    if (error instanceof KernelPathError) throw new RuntimeFailure(error.message);
    if (!(error instanceof ListenError)) throw error;
    const [flag, address] = error.listener === "peers"
      ? ["--peer-listen", peers.peers!.listen]
      : error.listener === "readers"
      ? ["--reader-listen", options.readerListen!]
      : ["--listen", options.listen];
    throw new RuntimeFailure(bindError(error.listener, address, error.cause, flag));
  }
  const api = await serveApi(proxy, options, auth, apiOptions, tls);
  const health = await serveHttp(options.healthListen, createHealthApp(proxy).fetch)
    .catch((error) => {
      throw new RuntimeFailure(
        bindError("health checks", options.healthListen, error, "--health-listen"),
      );
    });
  log.info("API on {host}:{port} ({scheme}), health port on {healthHost}:{healthPort}", {
    scheme: tls ? "https" : "http",
    host: options.apiListen.host,
    port: api.port,
    healthHost: options.healthListen.host,
    healthPort: health.port,
  });
  const stopDiscovery = options.discover
    ? followRegistry(
      {
        name: proxy.name,
        gossips: proxy.transport !== null,
        setBackends: (specs) => proxy.setBackends(specs),
        setPeers: (peers) => proxy.setPeers(peers),
        readFailed: () => proxy.counters.registryErrors++,
      },
      options.discover,
      options.discoverInterval,
    )
    : () => {};
  const registration = options.register
    ? await keepRegistered(options.register, {
      role: "proxy",
      name: options.name,
      address: formatHostPort(advertisedHost(peers.peers?.listen ?? options.listen)),
      ...(peers.peers?.api ? { api: peers.peers.api } : {}),
    }, options.registerTtl)
    : null;
  return { api, health, stopDiscovery, registration };
}

/** 16 URL-safe characters from 12 random bytes (Web Crypto: no node:crypto to load). */
function randomPassword(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_");
}
