import { loadLibc } from "#thread";
import { getLogger } from "@logtape/logtape";
import { KernelRoute } from "./kernel_route.ts";
import { NftPath } from "../dataplane/nft_path.ts";
import { openDataPlane } from "../dataplane/open_data_plane.ts";
import type { DataPlane, DataPlaneKind } from "../dataplane/plane.ts";
import type { HostPort } from "../core/address.ts";
import type { BackendSpec } from "../core/backend_spec.ts";
import {
  applyProbe,
  type HealthState,
  initialHealth,
  type ProbeResult,
} from "../core/health_state.ts";
import { ER_SERVER_SHUTDOWN } from "../core/mysql_packet.ts";
import {
  type AgreementConfig,
  type AgreementTimers,
  reconfigure,
  type Route,
  switchoverProblem,
} from "../core/agreement.ts";
import { type HealthView, viewCandidate } from "../core/health_view.ts";
import type { Rank, Ranks } from "../core/select_active.ts";
import { emptyRegister, type Register } from "../core/register.ts";
import type { QuorumMode } from "../core/voter_set.ts";
import type { KeyRing } from "../peers/keyring.ts";
import { readStateFile } from "../peers/state_file.ts";
import { PeerTransport } from "../peers/transport.ts";
import type { Fetch, TcpListener } from "../runtime/types.ts";
import type { PeerAddress } from "../core/peer_spec.ts";
import { AgreementShell, clock } from "./agreement_shell.ts";
import { EventLog } from "./events.ts";
import { HealthMonitor, type Prober } from "./health_monitor.ts";
import { askCaughtUp, type CatchUpAnswer, probeAgent } from "./probe.ts";
import { checkIdle, mayTurnIdle } from "../core/idle.ts";
import {
  FAILOVER_BUCKETS,
  type Histogram,
  histogram,
  LATENCY_BUCKETS,
  observe,
} from "../core/histogram.ts";
import { ReaderPort } from "./reader_port.ts";
import { History } from "./history.ts";
import type { ReaderFallback } from "../core/reader_choice.ts";
import { acceptClient, endBooks } from "./client_path.ts";
import type { Session, SessionHome } from "./session.ts";
import type { Refusal, RefusalReason } from "./refusal.ts";

const log = getLogger(["galerad", "proxy"]);

/** How this proxy talks to its peers and, with `--quorum agents`, to the agents. */
export interface PeerOptions {
  listen: HostPort;
  peers: PeerAddress[];
  keys: KeyRing;
  /** Voters are asked again (and gossip goes out) this often. */
  intervalMs: number;
  /** This proxy's API URL, told to peers for their springboard. */
  api?: string;
}

/** Everything `galerad proxy` needs to route; validated before it gets here. */
export interface ProxyOptions {
  listen: HostPort;
  backends: BackendSpec[];
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
  connectTimeoutMs: number;
  keepAliveMs: number;
  /**
   * Connects to one node that its server has not greeted yet, at once; more wait their turn
   * within the connect timeout (a reconnect storm stays inside the node's back_log). 0 or
   * absent: no limit.
   */
  maxConnecting?: number;
  shutdownTimeoutMs: number;
  /** This proxy's stable name: the proposer in the register, the sender in gossip. */
  name?: string;
  /** Name of the Galera cluster: registers of other clusters are ignored. */
  cluster?: string;
  /** Where the register is persisted, so a restart never forgets the active node. */
  stateFile?: string;
  /** Gossip with other proxies (and agents); absent for a proxy that decides alone. */
  peers?: PeerOptions;
  /** Who votes (docs/peers.md): auto picks agents when every agent that answered votes. */
  quorum?: QuorumMode | "auto";
  /** With quorum proxies: the proxies that vote (`--voters`); all of them when absent. */
  voters?: readonly string[];
  /** Lease timers; defaults in DEFAULT_TIMERS. */
  timers?: Partial<AgreementTimers>;
  /** Send a PROXY protocol v2 header to the backend, so it sees the client's address. */
  sendProxyV2?: boolean;
  /** Epoll threads carrying client sessions (src/dataplane/); default 1. */
  threads?: number;
  /** Epoll threads may be added under load up to this many (`--threads auto`, core/threads.ts). */
  maxThreads?: number;
  /** What carries the bytes (src/dataplane/); default auto. */
  dataPlane?: DataPlaneKind;
  /** A new session that must wait (a handover, a start) is refused after this; default 2 s. */
  holdTimeoutMs?: number;
  /**
   * After moving to another node, new sessions wait (at most this) until its agent says it has
   * applied everything ordered before the move; 0 never asks. Default DEFAULT_CATCH_UP_MS.
   */
  catchUpTimeoutMs?: number;
  /**
   * Backends come from a registry (setBackends): the first choice waits for its first read,
   * then for the first probe of every node it lists.
   */
  discovering?: boolean;
  /** On shutdown, how long /ready answers 503 while clients are still served; default 0. */
  shutdownDelayMs?: number;
  /** No byte from a client (or a backend) for this long closes its session; 0 or absent: never. */
  clientIdleTimeoutMs?: number;
  backendIdleTimeoutMs?: number;
  /** How agents are asked (a CA for https agents); default the runtime's fetch. */
  fetch?: Fetch;
  /** The reader port (reader_port.ts); absent: none. */
  readerListen?: HostPort;
  /** Where readers go when only the active node is healthy; default "active". */
  readerFallback?: ReaderFallback;
}

/** How often the idle check runs; its granularity. */
const IDLE_SWEEP_MS = 250;
/** Above this many voting proxies, the log suggests --voters. */
const LARGE_VOTER_SET = 7;
/** Data-plane threads report byte counts this often (src/dataplane/epoll_loop.ts). */
const BYTES_REPORT_MS = 1500;

/** The options a reload (SIGHUP) changes in a running proxy: see Proxy.retune(). */
export type LiveOption =
  | "intervalMs"
  | "timeoutMs"
  | "rise"
  | "fall"
  | "connectTimeoutMs"
  | "keepAliveMs"
  | "maxConnecting"
  | "shutdownTimeoutMs"
  | "shutdownDelayMs"
  | "catchUpTimeoutMs"
  | "clientIdleTimeoutMs"
  | "backendIdleTimeoutMs"
  | "sendProxyV2"
  | "readerFallback";

/** Long enough for Galera to evict a killed node (evs.suspect_timeout is 5 s by default). */
export const DEFAULT_CATCH_UP_MS = 10_000;

/** Lease timers by default; docs/peers.md explains each. */
export const DEFAULT_TIMERS: AgreementTimers = {
  leaseMs: 2000,
  marginMs: 200,
  guardMs: 300,
  settleMs: 2000,
  startupHoldMs: 2000,
};

/** A backend with what the proxy knows about it now. */
export interface BackendRuntime {
  spec: BackendSpec;
  health: HealthState;
  sessions: Set<Session>;
  /** Told when one of `sessions` ended. */
  home: SessionHome;
  /** Drained by an operator: never chosen anew; see Proxy.drain(). */
  maintenance: boolean;
  probes: number;
  probeFailures: number;
  /** The UDP port its agent votes on, once its status says so. */
  witnessPort: number | null;
}

/** The cluster-wide traffic switch an operator flips through the API. */
export interface TrafficSwitch {
  enabled: boolean;
  message: string;
  lastUpdated: number;
}

/** Counters since start, for the API and metrics. */
export interface ProxyCounters {
  accepted: number;
  /** Sessions closed by the idle check, by why: client idle, backend idle, no greeting. */
  idleClosed: Record<string, number>;
  refused: Partial<Record<RefusalReason, number>>;
  severed: number;
  connectFailures: number;
  bytesUp: number;
  bytesDown: number;
  /** Changes of the active node, by kind: initial, failover, switchover. */
  activeChanges: Record<string, number>;
  /** Failed reads of the registry (with --discover). */
  registryErrors: number;
}

/** A port the proxy could not listen on: which one, and the runtime's error as `cause`. */
export class ListenError extends Error {
  constructor(
    readonly listener: "clients" | "readers" | "peers",
    override readonly cause: unknown,
  ) {
    super(`cannot listen for ${listener}: ${cause instanceof Error ? cause.message : cause}`);
  }
}

/**
 * The single-writer proxy: watches every backend's agent, pipes every client to the one node a
 * majority of voters grants it (core/agreement.ts, carried out by AgreementShell), and severs
 * sessions on a node the moment it may no longer serve it.
 */
export class Proxy {
  readonly backends = new Map<string, BackendRuntime>();
  readonly events = new EventLog();
  readonly counters: ProxyCounters = {
    accepted: 0,
    idleClosed: {},
    refused: {},
    severed: 0,
    connectFailures: 0,
    bytesUp: 0,
    bytesDown: 0,
    activeChanges: {},
    registryErrors: 0,
  };
  traffic: TrafficSwitch = { enabled: true, message: "", lastUpdated: Date.now() };
  /** The node this proxy routes new sessions to now; null to hold or refuse them. */
  active: string | null = null;
  /** Why this proxy routes where it does (or refuses). */
  activeReason = "not decided yet";
  activeSince: number | null = null;
  draining = false;
  /** Latency histograms for /metrics (core/histogram.ts): per backend, and failovers. */
  readonly histograms = {
    probes: new Map<string, Histogram>(),
    connects: new Map<string, Histogram>(),
    failover: histogram(FAILOVER_BUCKETS),
    sever: histogram(LATENCY_BUCKETS),
    probe(name: string): Histogram {
      return getOrAdd(this.probes, name, () => histogram(LATENCY_BUCKETS));
    },
    connect(name: string): Histogram {
      return getOrAdd(this.connects, name, () => histogram(LATENCY_BUCKETS));
    },
  };
  /** When this proxy saw the active node go down, and which: a failover in progress. */
  #failoverFrom: { node: string; at: number } | null = null;

  /** A client session reached `node` after `connectMs`: the connect histogram, a failover's end. */
  sessionStarted(node: string, connectMs: number): void {
    observe(this.histograms.connect(node), connectMs / 1000);
    const from = this.#failoverFrom;
    if (from && from.node !== node && this.active === node) {
      observe(this.histograms.failover, (performance.now() - from.at) / 1000);
      this.#failoverFrom = null;
    }
  }

  /** Which configuration runs: its generation (1 at start, +1 per reload) and the last failure. */
  configState: {
    generation: number;
    loadedAt: number;
    lastReloadError: { at: string; message: string } | null;
  } = { generation: 1, loadedAt: Date.now(), lastReloadError: null };
  /** The last 15 minutes, a sample a second, for the dashboard's charts. */
  readonly history = new History(this);
  /** A stop was asked (SIGTERM): /ready fails from now on, even while clients are served. */
  stopping = false;
  /** Threads carrying client sessions now (src/dataplane/); known once started. */
  get threads(): number {
    return this.#plane?.threads ?? 1;
  }
  /** What carries the bytes, once listening. */
  dataPlane: "epoll" | "sockets" | "nft" = "sockets";
  readonly name: string;
  readonly cluster: string;
  readonly transport: PeerTransport | null = null;
  /** The agreement, once the first round of probes is in (it picks the quorum mode). */
  shell: AgreementShell | null = null;
  /** Why the quorum mode is what it is, for the log and the API. */
  quorumReason = "";
  /** The API URL each peer advertises, for the springboard. */
  readonly peerApis = new Map<string, string>();
  #peers: PeerAddress[];
  #listener: TcpListener | null = null;
  #plane: DataPlane | null = null;
  /** The kernel's path for client flows (`--data-plane nft`); galerad's listener takes the rest. */
  #kernel: KernelRoute | null = null;
  /** The reader port, when configured. */
  reader: ReaderPort | null = null;
  #monitor: HealthMonitor;
  #ready: Promise<void>;
  #markReady!: () => void;
  #sessionsDone = new Set<() => void>();
  /** While the active node drains, new sessions wait here (see drain()). */
  #hold: Promise<void> | null = null;
  /** While the agreement says "wait" (a handover, a start), new sessions wait here. */
  #routeHold: { promise: Promise<void>; release: () => void } | null = null;
  /** Nodes whose sessions are being severed for the agreement, awaiting the data plane. */
  #severing = new Map<string, { at: number; sessions: number }>();
  #idleTimer: ReturnType<typeof setInterval> | undefined;
  /** The last node this proxy routed to, so that a move to another one is known as such. */
  #lastServed: string | null = null;
  /** While the node moved to catches up, new sessions for it wait here. */
  #catchUp: { node: string; done: Promise<void> } | null = null;

  constructor(
    public options: ProxyOptions,
    prober?: Prober,
    readonly askCatchUp: (baseUrl: string, timeoutMs: number) => Promise<CatchUpAnswer> = (
      url,
      timeoutMs,
    ) => askCaughtUp(url, timeoutMs, options.fetch),
  ) {
    this.name = options.name ?? "galerad";
    this.cluster = options.cluster ?? "galera";
    this.#peers = options.peers?.peers.filter((p) => p.name !== this.name) ?? [];
    if (options.peers) {
      this.transport = new PeerTransport(
        { self: this.name, listen: options.peers.listen, keys: options.peers.keys },
        (message) => {
          if (message.api) this.peerApis.set(message.from, message.api);
          this.shell?.message(message);
        },
      );
    }
    for (const spec of options.backends) this.backends.set(spec.name, this.#runtime(spec));
    this.#ready = new Promise((resolve) => (this.#markReady = resolve));
    this.#monitor = new HealthMonitor(
      { intervalMs: options.intervalMs, timeoutMs: options.timeoutMs },
      (name, result) => this.#onProbe(name, result),
      prober ?? ((url, mode, timeoutMs) => probeAgent(url, mode, timeoutMs, options.fetch)),
    );
  }

  #runtime(spec: BackendSpec): BackendRuntime {
    const runtime: BackendRuntime = {
      spec,
      health: initialHealth(),
      sessions: new Set(),
      home: {
        ended: (session) => (endBooks(this.counters, session), this.release(runtime, session)),
      },
      maintenance: false,
      probes: 0,
      probeFailures: 0,
      witnessPort: null,
    };
    return runtime;
  }

  /** The port clients connect to (useful when listening on port 0). */
  get port(): number {
    return this.#listener?.port ?? this.options.listen.port;
  }

  /** True once this proxy may route: a majority of its voters grants it a healthy node. */
  get ready(): boolean {
    return this.active !== null;
  }

  /** Bytes through the writer port so far, each way: ended sessions' and live ones'. */
  get bytes(): { up: number; down: number } {
    let up = this.counters.bytesUp;
    let down = this.counters.bytesDown;
    for (const f of this.#kernel?.flows.values() ?? []) (up += f.bytesUp), (down += f.bytesDown);
    for (const b of this.backends.values()) {
      for (const s of b.sessions) (up += s.stats.up), (down += s.stats.down);
    }
    return { up, down };
  }

  /** The group's active node as this proxy hears it: what reader sessions avoid. */
  get groupActive(): string | null {
    return this.register.active;
  }

  /** Why no session may start at all now (reader port), or null. */
  closedReason(): Refusal | null {
    if (this.draining) {
      return { reason: "shutdown", message: "proxy is shutting down", code: ER_SERVER_SHUTDOWN };
    }
    if (!this.traffic.enabled) {
      return {
        reason: "traffic_disabled",
        message: `traffic disabled by operator: ${this.traffic.message}`,
      };
    }
    return null;
  }

  /** The register this proxy serves under (or, without a lease, the group's as it hears it). */
  get register(): Register {
    return this.shell?.register ?? emptyRegister(this.cluster);
  }

  get sessionCount(): number {
    let count = this.#kernel?.sessions ?? 0;
    for (const backend of this.backends.values()) count += backend.sessions.size;
    return count;
  }

  /** Sessions on `backend`: galerad's own and, with the kernel path, the kernel's flows. */
  sessionsOn(backend: BackendRuntime): number {
    return backend.sessions.size + (this.#kernel?.flows.get(backend.spec.name)?.sessions ?? 0);
  }

  /** Sessions routed to a backend so far: galerad's own and the kernel's. */
  get accepted(): number {
    let n = this.counters.accepted;
    for (const f of this.#kernel?.flows.values() ?? []) n += f.accepted;
    return n;
  }

  /** Binds the client port (and the peer port) and starts the health checks. */
  async start(): Promise<void> {
    const threads = this.options.threads ?? 1;
    const max = this.options.maxThreads ?? threads;
    const kernel = this.options.dataPlane === "nft";
    // With the kernel path, the epoll plane carries what the kernel does not: local clients,
    // and new sessions that wait or are refused (the route then points nowhere).
    const kind = kernel ? "epoll" : this.options.dataPlane;
    const plane = openDataPlane(threads, kind, { max });
    this.#plane = plane;
    this.#listener = await plane.listen(
      this.options.listen,
      { keepAliveMs: this.options.keepAliveMs },
      (conn) => acceptClient(this, conn),
    ).catch((error) => {
      throw new ListenError("clients", error);
    });
    this.dataPlane = plane.kind;
    if (kernel) {
      const path = await NftPath.open(this.options.listen, await loadLibc()).catch(
        async (error) => {
          await this.#listener?.close();
          throw error;
        },
      );
      this.#kernel = new KernelRoute(path, (cut) => this.#kernelChanged(cut));
      this.dataPlane = "nft";
    }
    log.info("listening for clients on {host}:{port}", {
      host: this.options.listen.host,
      port: this.port,
    });
    this.#idleTimer = setInterval(() => this.#sweepIdle(), IDLE_SWEEP_MS);
    this.history.start();
    if (this.options.readerListen) {
      // A plane of its own, of the same kind and threads: the writer's plane has one listener.
      const reader = new ReaderPort(
        this,
        this.options.readerListen,
        this.options.readerFallback ?? "active",
      );
      await reader.start(openDataPlane(threads, kind, { max })).catch(
        async (error) => {
          await this.#listener?.close();
          throw new ListenError("readers", error);
        },
      );
      this.reader = reader;
    }
    if (this.transport) {
      await this.transport.start(await loadLibc()).catch(async (error) => {
        await this.#listener?.close();
        await this.reader?.close(0);
        throw new ListenError("peers", error);
      });
      log.info("peer port udp {host}:{port}, peers {peers}", {
        host: this.options.peers!.listen.host,
        port: this.transport.port,
        peers: this.#peers.map((p) => p.name),
      });
    }
    if (this.options.discovering && this.backends.size === 0) {
      this.activeReason = "waiting for the first read of the registry";
    } else if (this.backends.size === 0) this.#startAgreement();
    for (const backend of this.backends.values()) {
      this.#monitor.watch(backend.spec.name, backend.spec.health);
    }
  }

  /** Resolves once this proxy first routes (or its start hold ran out). */
  whenReady(): Promise<void> {
    return this.#ready;
  }

  /** The quorum mode: as configured, or (auto) agents when every agent that answered votes. */
  #quorumMode(): QuorumMode {
    const asked = this.options.quorum ?? "auto";
    if (asked !== "auto") {
      this.quorumReason = `--quorum ${asked}`;
      return asked;
    }
    // Agents that answered at all: a JSON status (voting or not) or a clustercheck status code.
    const answered = [...this.backends.values()].filter((b) =>
      b.health.lastProbe?.witnessPort !== undefined
    );
    const voting = answered.filter((b) => b.witnessPort !== null);
    if (this.options.peers && answered.length > 0 && voting.length === answered.length) {
      this.quorumReason = `auto: every agent that answered votes (${
        voting.map((b) => b.spec.name).join(", ")
      })`;
      return "agents";
    }
    this.quorumReason = !this.options.peers
      ? "auto: no peer secret, so no agent can vote; this proxy is its own only voter"
      : `auto: ${
        answered.length - voting.length
      } of ${answered.length} agents do not vote (not galerad's, or without a peer secret); the proxies vote`;
    return "proxies";
  }

  #agreementConfig(mode: QuorumMode): AgreementConfig {
    const backends = [...this.backends.keys()];
    const peers = this.#peers.map((p) => p.name);
    const voters = mode === "agents"
      ? backends
      : mode === "none"
      ? [this.name]
      : this.options.voters ?? [this.name, ...peers];
    return {
      self: this.name,
      cluster: this.cluster,
      mode,
      voters: [...voters].sort(),
      peers,
      backends,
      ranks: this.ranks(),
      targets: Object.fromEntries(
        [...this.backends.values()].map((b) => [b.spec.name, b.spec.health]),
      ),
      timers: { ...DEFAULT_TIMERS, ...this.options.timers },
    };
  }

  /** The operator's `priority=` and `writer=` of every backend that has one. */
  ranks(): Ranks {
    const out: Record<string, Rank> = {};
    for (const { spec } of this.backends.values()) {
      if (spec.priority !== undefined || spec.writer !== undefined) {
        out[spec.name] = { priority: spec.priority ?? 0, writer: spec.writer ?? true };
      }
    }
    return out;
  }

  /** Where every party of the agreement is reached: peers at their address, agents' votes. */
  #partyAddresses(): Map<string, HostPort> {
    const out = new Map<string, HostPort>();
    for (const p of this.#peers) out.set(p.name, { host: p.host, port: p.port });
    if (this.shell?.state.config.mode === "agents") {
      for (const b of this.backends.values()) {
        if (b.witnessPort !== null) {
          out.set(b.spec.name, { host: b.spec.host, port: b.witnessPort });
        }
      }
    }
    return out;
  }

  #startAgreement(): void {
    const mode = this.#quorumMode();
    const config = this.#agreementConfig(mode);
    let saved;
    if (this.options.stateFile) {
      saved = readStateFile(this.options.stateFile, this.cluster, (file) =>
        log.warn("state file {file} is empty: starting without remembered state", { file })) ??
        undefined;
      if (saved) {
        log.info("remembered register from {file}: epoch {epoch}, active {active}", {
          file: this.options.stateFile,
          epoch: saved.register.epoch,
          active: saved.register.active,
        });
      }
    }
    const text = mode === "none"
      ? "--quorum none: AVAILABILITY FIRST. Each proxy decides alone when it cannot hear the others, so two proxies CAN route to two different nodes at once (certification failures, error 1213). Use --quorum agents or proxies to never split."
      : `quorum ${mode}: ${config.voters.length} voters (${config.voters.join(", ")}), ${
        Math.floor(config.voters.length / 2) + 1
      } needed to serve (${this.quorumReason})`;
    if (mode === "none") log.warn("{message}", { message: text });
    else log.info("{message}", { message: text });
    if (mode === "proxies" && config.voters.length > LARGE_VOTER_SET) {
      log.warn(
        "{count} proxies vote: each asks every other one every gossip interval, so the tier's agreement costs grow with the square of its size; --voters with 3, 5 or 7 of them keeps it linear",
        { count: config.voters.length },
      );
    }
    this.events.push({ time: Date.now(), kind: "quorum", message: text, data: { mode } });
    this.shell = new AgreementShell({
      config,
      tickMs: this.options.peers?.intervalMs ?? 200,
      stateFile: this.options.stateFile,
      saved,
      transport: this.transport,
      api: this.options.peers?.api,
    }, {
      route: (route) => this.#route(route),
      sever: (node, why) => this.#severFor(node, why),
      changed: (register, previous) => this.#registerChanged(register, previous),
    });
    this.transport?.setParties(this.#partyAddresses());
    this.#pushDrained();
    this.shell.view(this.localView());
    this.shell.start();
    setTimeout(() => this.#markReady(), config.timers.startupHoldMs);
  }

  /** A new voter set is a new tier: what this proxy served under the old one is severed. */
  #restartAgreement(why: string): void {
    log.warn("restarting the agreement: {why}", { why });
    this.shell?.stop();
    this.shell = null;
    for (const backend of this.backends.values()) this.#sever(backend, why);
    this.#route({ node: null, hold: true, reason: `restarting the agreement: ${why}` });
    this.#startAgreement();
  }

  /**
   * Stops accepting, lets sessions finish for up to `shutdownTimeoutMs`, then severs what is
   * left and stops the health checks.
   */
  async shutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const delayMs = this.options.shutdownDelayMs ?? 0;
    if (delayMs > 0 && this.active !== null) {
      // Load balancers in front see /ready fail and move new clients away while we still serve.
      log.info("stopping in {delayMs}ms: /ready answers 503, clients are still served", {
        delayMs,
      });
      await sleep(delayMs);
    }
    this.draining = true;
    this.#steer();
    this.#routeHold?.release();
    const readers = this.reader?.close(this.options.shutdownTimeoutMs);
    await this.#listener?.close();
    const remaining = this.sessionCount;
    if (remaining > 0) {
      log.info("draining {sessions} sessions for up to {timeoutMs}ms", {
        sessions: remaining,
        timeoutMs: this.options.shutdownTimeoutMs,
      });
      await this.#waitForSessions(this.options.shutdownTimeoutMs);
    }
    const left = this.sessionCount;
    if (left > 0) {
      log.warn("closing {sessions} sessions still open at the drain deadline", { sessions: left });
    }
    for (const backend of this.backends.values()) this.#sever(backend, "shutdown");
    await this.#kernel?.close();
    await readers;
    await this.#leave();
    this.#monitor.stop();
    clearInterval(this.#idleTimer);
    this.history.stop();
    this.shell?.stop();
    this.transport?.stop();
  }

  /**
   * Tells every voter this proxy serves nothing any more, once its sessions are closed, so a
   * move of the group never waits for our lease to run out. Bounded: a dead network is no reason
   * to hang a stop.
   */
  async #leave(): Promise<void> {
    const shell = this.shell;
    if (!shell) return;
    shell.feed({ type: "leave" });
    const deadline = performance.now() + 500;
    while (shell.state.holder.serving !== null && performance.now() < deadline) await sleep(10);
    if (shell.state.holder.serving === null) log.info("released the lease: voters are told");
  }

  /**
   * Closes sessions whose client or backend stayed silent past their limits, and counts a
   * backend that never sent its greeting as a failed connect (core/idle.ts). Byte counts reach
   * the main thread within a report interval, which the greeting allowance covers.
   */
  #sweepIdle(): void {
    // The kernel's route follows every decision where it is made; this catches any left over.
    this.#steer();
    const now = performance.now();
    const limits = {
      clientIdleMs: this.options.clientIdleTimeoutMs ?? 0,
      backendIdleMs: this.options.backendIdleTimeoutMs ?? 0,
      greetingMs: this.options.connectTimeoutMs,
      reportLagMs: BYTES_REPORT_MS,
    };
    const closed: Record<string, number> = {};
    const check = (session: Session, backend: string) => {
      if (session.closed || session.idle === null || !mayTurnIdle(session.stats, limits)) return;
      const { mark, verdict } = checkIdle(session.idle, session.stats, now, limits);
      session.idle = mark;
      if (verdict === null) return;
      session.close();
      this.counters.idleClosed[verdict] = (this.counters.idleClosed[verdict] ?? 0) + 1;
      if (verdict === "no greeting") this.counters.connectFailures++;
      const key = `${backend}: ${verdict}`;
      closed[key] = (closed[key] ?? 0) + 1;
    };
    for (const backend of this.backends.values()) {
      for (const session of backend.sessions) check(session, backend.spec.name);
    }
    for (const [name, set] of this.reader?.sessions ?? []) {
      for (const session of set) check(session, name);
    }
    // One line per sweep, however many closed: a storm of idle clients must not flood the log.
    if (Object.keys(closed).length > 0) {
      log.warn("closed idle sessions: {closed}", {
        closed: Object.entries(closed).map(([k, n]) => `${n} (${k})`).join(", "),
      });
    }
  }

  /** Enables or disables all traffic; disabling severs every session and refuses new ones. */
  setTraffic(enabled: boolean, message: string): void {
    this.traffic = { enabled, message, lastUpdated: Date.now() };
    const text = enabled ? "traffic enabled" : `traffic disabled: ${message}`;
    log.warn("{text}", { text, enabled, message });
    this.events.push({ time: Date.now(), kind: "traffic", message: text, data: { enabled } });
    this.#steer();
    if (!enabled) {
      this.reader?.changed();
      for (const backend of this.backends.values()) this.#sever(backend, "traffic disabled");
    }
  }

  /**
   * Asks the group to move to `target` on an operator's request. It goes through the voters, so
   * every proxy follows and severs its sessions on the old node first. Throws a RangeError
   * (with an HTTP status) saying why when the target cannot take the role; returns the proposal.
   */
  switchover(target: string, message: string): Register {
    const shell = this.shell;
    if (!shell) {
      throw Object.assign(new RangeError("this proxy is not ready yet: try again in a moment"), {
        status: 503,
      });
    }
    const problem = switchoverProblem(shell.state, target, clock());
    if (problem) throw Object.assign(new RangeError(problem.message), { status: problem.status });
    const why = message.trim() === "" ? "requested" : message.trim();
    shell.feed({ type: "switchover", target, reason: why.slice(0, 160) });
    return shell.state.proposal ?? shell.register;
  }

  #drainedNames(): string[] {
    return [...this.backends.values()].filter((b) => b.maintenance).map((b) => b.spec.name);
  }

  #pushDrained(): void {
    this.shell?.feed({ type: "drained", names: this.#drainedNames() });
    this.reader?.changed();
  }

  /**
   * Puts a backend in maintenance. It is never chosen anew. If it is the active node, new
   * sessions on this proxy wait while its sessions finish (up to `timeoutMs`, then they are
   * closed), and then the group switches to the best other node, which the waiting sessions
   * reach: there is never a moment with two writers. Returns the node the group is on after it.
   */
  async drain(name: string, timeoutMs: number): Promise<string | null> {
    const backend = this.backends.get(name);
    if (!backend) throw new RangeError(`no backend named "${name}"`);
    backend.maintenance = true;
    const message = `${name} is in maintenance (draining up to ${timeoutMs}ms)`;
    log.warn("{message}", { message, backend: name });
    this.events.push({
      time: Date.now(),
      kind: "maintenance",
      message,
      data: { backend: name, maintenance: true },
    });
    this.#pushDrained();
    if (this.register.active !== name) return this.register.active;
    const other = () => viewCandidate(this.localView(), name, this.#drainedNames(), this.ranks());
    if (!other()) {
      backend.maintenance = false;
      this.#pushDrained();
      throw new RangeError(
        `${name} is the active node and no other node is healthy: it stays active`,
      );
    }
    let release!: () => void;
    this.#hold = new Promise((resolve) => (release = resolve));
    try {
      const deadline = Date.now() + timeoutMs;
      this.#steer();
      while (this.sessionsOn(backend) > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const candidate = other();
      if (!candidate) {
        throw new RangeError(`no other node is healthy any more: ${name} stays active`);
      }
      if (this.register.active === name) this.switchover(candidate.name, `drain of ${name}`);
      // New sessions keep waiting until the group has moved (or the wait ends).
      const until = Date.now() + Math.max(2000, this.options.holdTimeoutMs ?? 2000);
      while (this.active !== candidate.name && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 20));
      }
      return this.register.active;
    } finally {
      this.#hold = null;
      release();
      this.#steer();
    }
  }

  /** Takes a backend out of maintenance; it becomes a candidate again (no failback). */
  undrain(name: string): void {
    const backend = this.backends.get(name);
    if (!backend) throw new RangeError(`no backend named "${name}"`);
    if (!backend.maintenance) return;
    backend.maintenance = false;
    const message = `${name} is back from maintenance`;
    log.info("{message}", { message, backend: name });
    this.events.push({
      time: Date.now(),
      kind: "maintenance",
      message,
      data: { backend: name, maintenance: false },
    });
    this.#pushDrained();
  }

  /**
   * Follows a new backend list (from a registry): new nodes become candidates, removed nodes are
   * dropped, except the active node while this proxy sees it healthy (a registry that blinks
   * must not cut the writer off). Returns the names kept against the list.
   */
  setBackends(specs: BackendSpec[], source: "registry" | "config" = "registry"): string[] {
    const wanted = new Map(specs.map((s) => [s.name, s]));
    const kept: string[] = [];
    let changed = false;
    for (const [name, backend] of this.backends) {
      const next = wanted.get(name);
      const same = next && next.host === backend.spec.host && next.port === backend.spec.port &&
        next.health === backend.spec.health;
      if (same) {
        // A new rank changes only future choices: the sticky active node keeps its role.
        if (next.priority !== backend.spec.priority || next.writer !== backend.spec.writer) {
          backend.spec = next;
          changed = true;
        }
        continue;
      }
      // A registry that blinks must not cut the writer off; an operator's new file may.
      if (source === "registry" && this.active === name && backend.health.status === "healthy") {
        kept.push(name);
        continue;
      }
      this.#monitor.unwatch(name);
      this.#sever(backend, `${name} left the ${source}`);
      this.backends.delete(name);
      changed = true;
      log.warn("backend {backend} removed ({source})", { backend: name, source });
      this.events.push({
        time: Date.now(),
        kind: "membership",
        message: `${name} removed by the ${source}`,
        data: { backend: name },
      });
    }
    for (const [name, spec] of wanted) {
      if (this.backends.has(name)) continue;
      this.backends.set(name, this.#runtime(spec));
      changed = true;
      this.#monitor.watch(name, spec.health);
      log.info("backend {backend} added ({host}:{port}, {source})", {
        backend: name,
        host: spec.host,
        port: spec.port,
        source,
      });
      this.events.push({
        time: Date.now(),
        kind: "membership",
        message: `${name} added by the ${source}`,
        data: { backend: name },
      });
    }
    for (const name of kept) {
      log.warn(
        "kept {backend}: the registry no longer lists it (or moved it) but it is the healthy active node",
        { backend: name },
      );
    }
    if (changed) this.#reconfigure();
    if (changed) this.reader?.changed();
    // A first read that lists no node: nothing to wait for (a read with nodes waits for their
    // first probes, in #probed).
    if (!this.shell && this.backends.size === 0) this.#startAgreement();
    else if (!this.shell) this.activeReason = "waiting for the first probe of every node";
    return kept;
  }

  /**
   * Takes the options a reload may change while running (timers, timeouts, the reader
   * fallback); sessions are untouched. Backends change through setBackends(…, "config").
   */
  retune(patch: Partial<Pick<ProxyOptions, LiveOption>>): void {
    this.options = { ...this.options, ...patch };
    this.#monitor.options.intervalMs = this.options.intervalMs;
    this.#monitor.options.timeoutMs = this.options.timeoutMs;
    if (this.reader && patch.readerFallback && patch.readerFallback !== this.reader.fallback) {
      this.reader.fallback = patch.readerFallback;
      this.reader.changed();
    }
  }

  /** Follows a new peer list (from a registry). */
  setPeers(specs: PeerAddress[]): void {
    const next = specs.filter((p) => p.name !== this.name);
    const key = (list: PeerAddress[]) =>
      list.map((p) => `${p.name}=${p.host}:${p.port}`).sort().join();
    if (key(next) === key(this.#peers)) return;
    this.#peers = next;
    log.info("peers now {peers} (registry)", { peers: next.map((p) => p.name) });
    this.#reconfigure();
  }

  #reconfigure(): void {
    const shell = this.shell;
    if (!shell) return;
    const wanted = this.#agreementConfig(shell.state.config.mode);
    const next = reconfigure(shell.state, wanted);
    if (next) {
      shell.state = next;
      this.transport?.setParties(this.#partyAddresses());
      this.shell?.view(this.localView());
    } else {
      this.#restartAgreement(`the voters are now ${wanted.voters.join(", ")}`);
    }
  }

  /** This proxy's health view: every backend with a known state (unknown ones are left out). */
  localView(): HealthView {
    const view: HealthView = {};
    for (const b of this.backends.values()) {
      if (b.health.status === "unknown") continue;
      view[b.spec.name] = {
        healthy: b.health.status === "healthy",
        index: b.health.wsrepLocalIndex,
      };
    }
    return view;
  }

  #registerChanged(register: Register, previous: Register): void {
    this.reader?.changed();
    if (register.active !== previous.active && register.active !== null) {
      const kind = register.kind === "none" ? "initial" : register.kind;
      this.counters.activeChanges[kind] = (this.counters.activeChanges[kind] ?? 0) + 1;
    }
    const message = `register epoch ${register.epoch}: active ${register.active ?? "none"} (was ${
      previous.active ?? "none"
    }), by ${register.proposer || "nobody"}: ${register.reason}`;
    log.warn("{message}", {
      message,
      epoch: register.epoch,
      proposer: register.proposer,
      active: register.active,
      previous: previous.active,
      kind: register.kind,
      reason: register.reason,
    });
    this.events.push({
      time: Date.now(),
      kind: "register",
      message,
      data: { epoch: register.epoch, active: register.active },
    });
  }

  #onProbe(name: string, result: ProbeResult): void {
    const backend = this.backends.get(name);
    if (!backend) return;
    const { state, changed } = applyProbe(backend.health, result, {
      rise: this.options.rise,
      fall: this.options.fall,
      now: Date.now(),
    });
    backend.health = state;
    backend.probes++;
    if (!result.ok) backend.probeFailures++;
    observe(this.histograms.probe(name), result.latencyMs / 1000);
    if (result.witnessPort !== undefined && result.witnessPort !== backend.witnessPort) {
      backend.witnessPort = result.witnessPort ?? null;
      if (this.shell?.state.config.mode === "agents") {
        this.transport?.setParties(this.#partyAddresses());
      }
    }
    if (changed && state.status === "unhealthy" && name === this.active) {
      this.#failoverFrom = { node: name, at: performance.now() };
    }
    if (changed) {
      const message = `${name} is ${state.status}: ${state.reason}`;
      const fields = { message, backend: name, status: state.status, reason: state.reason };
      if (state.status === "healthy") log.info("{message}", fields);
      else log.warn("{message}", fields);
      this.events.push({
        time: Date.now(),
        kind: "health",
        message,
        data: { backend: name, status: state.status },
      });
    }
    if (!this.shell) {
      if ([...this.backends.values()].every((b) => b.health.status !== "unknown")) {
        this.#startAgreement();
      }
      return;
    }
    if (changed) this.shell?.view(this.localView());
    if (changed) this.reader?.changed();
  }

  /**
   * Where new sessions go, as the agreement says. Leaving a node severs its sessions (the
   * agreement also asks for that itself, and waits for the data plane to confirm).
   */
  #route(route: Route): void {
    const previous = this.active;
    this.activeReason = route.reason;
    if (route.node === null && route.hold) {
      if (!this.#routeHold) {
        let release!: () => void;
        const promise = new Promise<void>((resolve) => (release = resolve));
        this.#routeHold = { promise, release };
      }
    } else if (this.#routeHold) {
      const hold = this.#routeHold;
      this.#routeHold = null;
      hold.release();
    }
    if (route.node !== null) this.#markReady();
    if (route.node !== null && this.#lastServed !== null && this.#lastServed !== route.node) {
      this.#startCatchUp(route.node, this.#lastServed);
    }
    if (route.node !== null) this.#lastServed = route.node;
    if (previous === route.node) return this.#steer();
    this.active = route.node;
    this.activeSince = route.node === null ? null : Date.now();
    this.#steer();
    const message = route.node === null
      ? `no active node: ${route.reason}`
      : `active node is now ${route.node} (was ${previous ?? "none"}): ${route.reason}`;
    const fields = { message, active: route.node, previous, reason: route.reason };
    if (route.node === null) log.error("{message}", fields);
    else log.warn("{message}", fields);
    this.events.push({
      time: Date.now(),
      kind: "active",
      message,
      data: { active: route.node, previous },
    });
  }

  /**
   * Clients that reach a node before it applied the last commits of the node they leave start
   * from an older snapshot, and their first writes fail certification (1213). So new sessions
   * wait until the agent's causal read returns; a node that cannot say is served anyway, logged.
   */
  #startCatchUp(node: string, from: string): void {
    const timeoutMs = this.options.catchUpTimeoutMs ?? DEFAULT_CATCH_UP_MS;
    const backend = this.backends.get(node);
    if (timeoutMs <= 0 || !backend) return;
    const done = this.askCatchUp(backend.spec.health, timeoutMs).then((answer) => {
      const message = answer.ok
        ? `${node} ${answer.reason} after ${answer.ms} ms (moved from ${from})`
        : `cannot confirm ${node} caught up with ${from} (${answer.reason}); serving it anyway`;
      const fields = { message, backend: node, from, ms: answer.ms, ok: answer.ok };
      if (answer.ok) log.info("{message}", fields);
      else log.warn("{message}", fields);
      this.events.push({ time: Date.now(), kind: "catch-up", message, data: fields });
    }).finally(() => {
      if (this.#catchUp?.done === done) this.#catchUp = null;
      this.#steer();
    });
    this.#catchUp = { node, done };
  }

  /** The agreement may no longer serve `node`: close its sessions, confirm once none is left. */
  #severFor(node: string, why: string): void {
    const backend = this.backends.get(node);
    if (!this.#severing.has(node)) {
      this.#severing.set(node, { at: performance.now(), sessions: backend?.sessions.size ?? 0 });
    }
    if (backend) this.#sever(backend, why);
    this.#steer();
    this.#confirmSevered(node);
  }

  /**
   * Whether a session can still carry bytes: spliced (until the data plane says closed), dialled
   * (its connect splices by itself) or live. Stops at the first: it runs on every release during a sever.
   */
  #hasLiveSession(backend: BackendRuntime): boolean {
    for (const s of backend.sessions) {
      if (!s.closed || s.server !== null || s.dialling) return true;
    }
    return false;
  }

  #confirmSevered(node: string): void {
    if (!this.#severing.has(node)) return;
    const backend = this.backends.get(node);
    if (backend && this.#hasLiveSession(backend)) return;
    // The kernel's flows to it are cut once a change away from it is applied (the guard).
    if (this.#kernel?.carries(node)) return;
    const started = this.#severing.get(node)!;
    this.#severing.delete(node);
    if (started.sessions > 0) {
      const ms = performance.now() - started.at;
      observe(this.histograms.sever, ms / 1000);
      log.info("the {count} sessions on {backend} were closed {ms} ms after the sever", {
        count: started.sessions,
        backend: node,
        ms: Math.round(ms),
      });
    }
    // Not re-entered: the shell is still carrying out the effects of the step that asked.
    queueMicrotask(() => this.shell?.severed(node));
  }

  /**
   * Points the kernel path where new sessions may go now: the active node when nothing holds or
   * refuses them, else galerad's own listener, keeping the running flows only while they are on
   * the active node and may stay there.
   */
  #steer(): void {
    const kernel = this.#kernel;
    if (!kernel) return;
    const active = this.active;
    const allowed = active !== null && !this.#severing.has(active) &&
      this.closedReason() === null;
    const waits = this.#hold !== null || this.#routeHold !== null ||
      (this.#catchUp !== null && this.#catchUp.node === active);
    if (allowed && !waits) {
      const spec = this.backends.get(active)!.spec;
      kernel.want({ mode: "route", node: { name: spec.name, host: spec.host, port: spec.port } });
    } else if ((allowed || this.draining) && active !== null && kernel.carries(active)) {
      kernel.want({ mode: "hold" });
    } else kernel.want({ mode: "cut" });
  }

  /** A change applied (or flows were read): severs may be confirmed, drains may end. */
  #kernelChanged(cut: number): void {
    if (cut > 0) {
      this.counters.severed += cut;
      log.warn("severed {count} kernel flows", { count: cut });
    }
    for (const node of [...this.#severing.keys()]) this.#confirmSevered(node);
    this.#sessionEnded();
  }

  #sever(backend: BackendRuntime, why: string): void {
    const count = backend.sessions.size;
    if (count === 0) return;
    for (const session of backend.sessions) session.close();
    this.counters.severed += count;
    log.warn("severed {count} sessions on {backend}: {why}", {
      count,
      backend: backend.spec.name,
      why,
    });
  }

  /** Why a new session cannot be routed now, or null when it can. */
  refusal(): Refusal | null {
    const closed = this.closedReason();
    if (closed) return closed;
    if (this.active === null) {
      const reason = this.activeReason.startsWith("no quorum")
        ? "no_quorum"
        : this.activeReason.startsWith("the group is on")
        ? "minority"
        : this.activeReason.startsWith("no healthy")
        ? "no_active_node"
        : this.shell === null
        ? "starting"
        : "waiting";
      return { reason, message: this.activeReason };
    }
    return null;
  }

  /** Waits while the agreement holds new sessions (a handover, a start), at most the hold timeout. */
  async waitForRoute(): Promise<void> {
    const deadline = performance.now() + (this.options.holdTimeoutMs ?? 2000);
    if (!this.shell) {
      await Promise.race([this.#ready, sleep(this.options.holdTimeoutMs ?? 2000)]);
    }
    while (!this.draining && (this.#hold || this.#routeHold)) {
      const left = deadline - performance.now();
      if (left <= 0 && !this.#hold) return;
      const waitFor = this.#hold ?? this.#routeHold!.promise;
      await Promise.race([waitFor, sleep(Math.max(1, left))]);
    }
    const catchUp = this.#catchUp;
    if (catchUp && catchUp.node === this.active && !this.draining) await catchUp.done;
  }

  /** A session ended (or never started): forget it, and confirm a sever it completes. */
  release(backend: BackendRuntime, session: Session): void {
    backend.sessions.delete(session);
    this.#confirmSevered(backend.spec.name);
    this.#sessionEnded();
  }

  #sessionEnded(): void {
    if (this.sessionCount > 0) return;
    for (const done of this.#sessionsDone) done();
  }

  #waitForSessions(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.#sessionsDone.delete(finish);
        resolve();
      };
      const timer = setTimeout(finish, timeoutMs);
      this.#sessionsDone.add(finish);
      if (this.sessionCount === 0) finish();
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function getOrAdd<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) map.set(key, value = make());
  return value;
}
