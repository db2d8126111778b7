import { getLogger } from "@logtape/logtape";
import {
  type ClientConn,
  type DataPlane,
  type DataPlaneKind,
  openDataPlane,
} from "../runtime/data_plane.ts";
import type { HostPort } from "../core/address.ts";
import type { BackendSpec } from "../core/backend_spec.ts";
import {
  applyProbe,
  type HealthState,
  initialHealth,
  type ProbeResult,
} from "../core/health_state.ts";
import { proxyV2Header } from "../core/proxy_protocol.ts";
import { ER_SERVER_SHUTDOWN, ER_UNKNOWN_ERROR, mysqlErrorPacket } from "../core/mysql_packet.ts";
import { decideGroup, groupCandidate, type HealthView } from "../core/group_decision.ts";
import { compareRegisters, emptyRegister, nextRegister, type Register } from "../core/register.ts";
import type { PeerMessage } from "../peers/codec.ts";
import { type GossipOptions, PeerGroup } from "../peers/gossip.ts";
import { readStateFile, writeStateFile } from "../peers/state_file.ts";
import type { TcpConn, TcpListener } from "../runtime/types.ts";
import { EventLog } from "./events.ts";
import { HealthMonitor, type Prober } from "./health_monitor.ts";
import { Session } from "./session.ts";

const log = getLogger(["galerad", "proxy"]);

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
  shutdownTimeoutMs: number;
  /** This proxy's stable name: the proposer in the register, the sender in gossip. */
  name?: string;
  /** Name of the Galera cluster: registers of other clusters are ignored. */
  cluster?: string;
  /** Where the register is persisted, so a restart never forgets the active node. */
  stateFile?: string;
  /** Gossip with other proxies; absent for a proxy that decides alone. */
  peers?: Omit<GossipOptions, "self" | "cluster">;
  /** With peers: how long a starting proxy waits to learn the register before deciding itself. */
  startupWaitMs?: number;
  /** Send a PROXY protocol v2 header to the backend, so it sees the client's address. */
  sendProxyV2?: boolean;
  /** Threads carrying client sessions (data_plane.ts); default 1, the main thread. */
  threads?: number;
  /** Epoll threads may be added under load up to this many (`--threads auto`, core/threads.ts). */
  maxThreads?: number;
  /** What carries the bytes (data_plane.ts); default auto. */
  dataPlane?: DataPlaneKind;
  /** Upper bound of the handover fence (see Proxy.#startFence); default 1000 ms. */
  fenceTimeoutMs?: number;
}

/** A backend with what the proxy knows about it now. */
export interface BackendRuntime {
  spec: BackendSpec;
  health: HealthState;
  sessions: Set<Session>;
  /** Drained by an operator: never chosen anew; see Proxy.drain(). */
  maintenance: boolean;
  probes: number;
  probeFailures: number;
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
  refused: Record<string, number>;
  severed: number;
  connectFailures: number;
  bytesUp: number;
  bytesDown: number;
  /** Changes of the active node, by kind: initial, failover, switchover, no_node. */
  activeChanges: Record<string, number>;
  /** Failed reads of the registry (with --discover). */
  registryErrors: number;
}

/**
 * The single-writer proxy: watches every backend's agent, keeps one sticky active node, pipes
 * every client to it and severs sessions on a node the moment it stops being active.
 */
export class Proxy {
  readonly backends = new Map<string, BackendRuntime>();
  readonly events = new EventLog();
  readonly counters: ProxyCounters = {
    accepted: 0,
    refused: {},
    severed: 0,
    connectFailures: 0,
    bytesUp: 0,
    bytesDown: 0,
    activeChanges: {},
    registryErrors: 0,
  };
  traffic: TrafficSwitch = { enabled: true, message: "", lastUpdated: Date.now() };
  /** The replicated decision: which node the whole group routes to. */
  register: Register;
  /** The node this proxy routes new sessions to now; null to refuse them. */
  active: string | null = null;
  /** Why this proxy routes where it does (or refuses). */
  activeReason = "not decided yet";
  activeSince: number | null = null;
  draining = false;
  /** Threads carrying client sessions now (data_plane.ts); known once started. */
  get threads(): number {
    return this.#plane?.threads ?? 1;
  }
  /** What carries the bytes, once listening. */
  dataPlane: "epoll" | "sockets" = "sockets";
  readonly name: string;
  readonly peerGroup: PeerGroup | null = null;
  /** Where the register came from at start: "state file", "peer NAME", or "decided". */
  learnedFrom: string | null = null;
  #listener: TcpListener | null = null;
  #plane: DataPlane | null = null;
  #monitor: HealthMonitor;
  #ready: Promise<void>;
  #markReady!: () => void;
  #isReady = false;
  #sessionsDone = new Set<() => void>();
  #learning = false;
  /** While the active node drains, new sessions wait here (see drain()). */
  #hold: Promise<void> | null = null;
  /** After a handover, new sessions wait until every live peer holds the new register. */
  #fence:
    | { release: () => void; promise: Promise<void>; timer: ReturnType<typeof setTimeout> }
    | null = null;
  #startupTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly options: ProxyOptions, prober?: Prober) {
    this.name = options.name ?? "galerad";
    const cluster = options.cluster ?? "galera";
    this.register = emptyRegister(cluster);
    if (options.stateFile) {
      const saved = readStateFile(options.stateFile, cluster);
      if (saved) {
        this.register = saved;
        log.info("remembered register from {file}: epoch {epoch}, active {active}", {
          file: options.stateFile,
          epoch: saved.epoch,
          active: saved.active,
        });
      }
    }
    if (options.peers) {
      this.peerGroup = new PeerGroup({ ...options.peers, self: this.name, cluster }, {
        snapshot: () => ({
          register: this.register,
          view: this.localView(),
          ready: !this.#learning && this.#isReady,
        }),
        onMessage: (message) => this.#onPeerMessage(message),
        onLiveness: () => {
          this.#checkFence();
          this.#decide();
        },
      });
    }
    for (const spec of options.backends) {
      this.backends.set(spec.name, {
        spec,
        health: initialHealth(),
        sessions: new Set(),
        maintenance: false,
        probes: 0,
        probeFailures: 0,
      });
    }
    this.#ready = new Promise((resolve) => (this.#markReady = resolve));
    this.#monitor = new HealthMonitor(
      { intervalMs: options.intervalMs, timeoutMs: options.timeoutMs },
      (name, result) => this.#onProbe(name, result),
      prober,
    );
  }

  /** The port clients connect to (useful when listening on port 0). */
  get port(): number {
    return this.#listener?.port ?? this.options.listen.port;
  }

  /** True once every backend has answered (or failed) its first probe and the register is learned. */
  get ready(): boolean {
    return this.#isReady && !this.#learning;
  }

  get sessionCount(): number {
    let count = 0;
    for (const backend of this.backends.values()) count += backend.sessions.size;
    return count;
  }

  /** Binds the client port and starts the health checks. */
  async start(): Promise<void> {
    const threads = this.options.threads ?? 1;
    const max = this.options.maxThreads ?? threads;
    const plane = openDataPlane(threads, this.options.dataPlane, { max });
    this.#plane = plane;
    this.#listener = await plane.listen(
      this.options.listen,
      { keepAliveMs: this.options.keepAliveMs },
      (conn) => this.#accept(conn),
    );
    this.dataPlane = plane.kind;
    log.info("listening for clients on {host}:{port}", {
      host: this.options.listen.host,
      port: this.port,
    });
    if (this.peerGroup) {
      this.#learning = true;
      await this.peerGroup.start();
      this.#startupTimer = setTimeout(
        () => this.#endLearning("startup wait over"),
        this.options.startupWaitMs ?? 2000,
      );
    }
    if (this.backends.size === 0) this.#setReady();
    for (const backend of this.backends.values()) {
      this.#monitor.watch(backend.spec.name, backend.spec.health);
    }
  }

  /** Resolves once the first round of probes is in and the first decision is made. */
  whenReady(): Promise<void> {
    return this.#ready;
  }

  /**
   * Stops accepting, lets sessions finish for up to `shutdownTimeoutMs`, then severs what is
   * left and stops the health checks.
   */
  async shutdown(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
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
    this.#monitor.stop();
    clearTimeout(this.#startupTimer);
    this.#endFence();
    this.peerGroup?.stop();
  }

  /** Enables or disables all traffic; disabling severs every session and refuses new ones. */
  setTraffic(enabled: boolean, message: string): void {
    this.traffic = { enabled, message, lastUpdated: Date.now() };
    const text = enabled ? "traffic enabled" : `traffic disabled: ${message}`;
    log.warn("{text}", { text, enabled, message });
    this.events.push({ time: Date.now(), kind: "traffic", message: text, data: { enabled } });
    if (!enabled) {
      for (const backend of this.backends.values()) this.#sever(backend, "traffic disabled");
    }
    this.#decide();
  }

  /**
   * Moves the group to `target` on an operator's request. It goes through the register, so every
   * peer follows and every proxy severs its sessions on the old node. Throws a RangeError saying
   * why when the target cannot take the role.
   */
  switchover(target: string, message: string): Register {
    const backend = this.backends.get(target);
    if (!backend) throw new RangeError(`no backend named "${target}"`);
    if (!this.ready) throw new RangeError("this proxy is not ready yet: try again in a moment");
    if (backend.maintenance) throw new RangeError(`${target} is drained: enable it first`);
    if (backend.health.status !== "healthy") {
      throw new RangeError(`${target} is not healthy here: ${backend.health.reason}`);
    }
    if (this.register.active === target) {
      throw new RangeError(`${target} is already the active node`);
    }
    const why = message.trim() === "" ? "requested" : message.trim();
    this.#adopt(
      nextRegister(this.register, {
        proposer: this.name,
        active: target,
        reason: `switchover by operator: ${why}`,
        time: Date.now(),
      }),
      "operator",
    );
    return this.register;
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
    if (this.register.active !== name) {
      this.#decide();
      return this.register.active;
    }
    const views: Record<string, HealthView> = {
      ...this.peerGroup?.liveViews(),
      [this.name]: this.localView(),
    };
    const drained = new Set(
      [...this.backends.values()].filter((b) => b.maintenance).map((b) => b.spec.name),
    );
    if (!groupCandidate(views, name, drained)) {
      backend.maintenance = false;
      throw new RangeError(
        `${name} is the active node and no other node is healthy: it stays active`,
      );
    }
    let release!: () => void;
    this.#hold = new Promise((resolve) => (release = resolve));
    try {
      const deadline = Date.now() + timeoutMs;
      while (backend.sessions.size > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const candidate = groupCandidate(
        { ...this.peerGroup?.liveViews(), [this.name]: this.localView() },
        name,
        drained,
      );
      if (!candidate) {
        throw new RangeError(`no other node is healthy any more: ${name} stays active`);
      }
      if (this.register.active === name) this.switchover(candidate.name, `drain of ${name}`);
      return this.register.active;
    } finally {
      this.#hold = null;
      release();
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
    this.#decide();
  }

  /**
   * Follows a new backend list (from a registry): new nodes become candidates, removed nodes are
   * dropped, except the active node while this proxy sees it healthy (a registry that blinks
   * must not cut the writer off). Returns the names kept against the list.
   */
  setBackends(specs: BackendSpec[]): string[] {
    const wanted = new Map(specs.map((s) => [s.name, s]));
    const kept: string[] = [];
    for (const [name, backend] of this.backends) {
      const next = wanted.get(name);
      const same = next && next.host === backend.spec.host && next.port === backend.spec.port &&
        next.health === backend.spec.health;
      if (same) continue;
      if (this.register.active === name && backend.health.status === "healthy") {
        kept.push(name);
        continue;
      }
      this.#monitor.unwatch(name);
      this.#sever(backend, `${name} left the registry`);
      this.backends.delete(name);
      log.warn("backend {backend} removed (registry)", { backend: name });
      this.events.push({
        time: Date.now(),
        kind: "membership",
        message: `${name} removed by the registry`,
        data: { backend: name },
      });
    }
    for (const [name, spec] of wanted) {
      if (this.backends.has(name)) continue;
      this.backends.set(name, {
        spec,
        health: initialHealth(),
        sessions: new Set(),
        maintenance: false,
        probes: 0,
        probeFailures: 0,
      });
      this.#monitor.watch(name, spec.health);
      log.info("backend {backend} added ({host}:{port}, registry)", {
        backend: name,
        host: spec.host,
        port: spec.port,
      });
      this.events.push({
        time: Date.now(),
        kind: "membership",
        message: `${name} added by the registry`,
        data: { backend: name },
      });
    }
    for (const name of kept) {
      log.warn(
        "kept {backend}: the registry no longer lists it (or moved it) but it is the healthy active node",
        { backend: name },
      );
    }
    this.#decide();
    return kept;
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

  #setReady(): void {
    if (this.#isReady) return;
    this.#isReady = true;
    this.#decide();
    if (!this.#learning) this.#markReady();
  }

  #endLearning(why: string): void {
    if (!this.#learning) return;
    this.#learning = false;
    clearTimeout(this.#startupTimer);
    if (this.learnedFrom === null) {
      this.learnedFrom = this.register.epoch > 0 ? "state file" : "decided";
    }
    log.info("register learned ({why}): epoch {epoch}, active {active}, from {source}", {
      why,
      epoch: this.register.epoch,
      active: this.register.active,
      source: this.learnedFrom,
    });
    this.#decide();
    if (this.#isReady) this.#markReady();
  }

  #onPeerMessage(message: PeerMessage): void {
    if (this.#learning && (message.ready || message.register.epoch > 0)) {
      if (compareRegisters(message.register, this.register) >= 0) {
        this.learnedFrom = `peer ${message.from}`;
      }
      this.#adopt(message.register, `learned from ${message.from}`);
      this.#endLearning(`heard from ${message.from}`);
      return;
    }
    if (!this.#adopt(message.register, `learned from ${message.from}`)) this.#decide();
    this.#checkFence();
  }

  /**
   * The handover fence. When the role moves from one node to another, a proxy that already
   * routes to the new node while a slower peer still routes to the old one would let both take
   * writes for a few milliseconds: enough for a certification conflict. So after adopting such a
   * change, this proxy (which has already severed its sessions on the old node) holds new
   * sessions until every live peer's gossip shows the new register, which each sends as soon as
   * it has severed its own; at most `fenceTimeoutMs`, since a peer can die mid-handover.
   */
  #startFence(): void {
    if (!this.peerGroup) return;
    this.#fence?.release();
    clearTimeout(this.#fence?.timer);
    let release!: () => void;
    const promise = new Promise<void>((resolve) => (release = resolve));
    const timer = setTimeout(() => {
      log.warn("handover fence released by timeout: not every live peer confirmed epoch {epoch}", {
        epoch: this.register.epoch,
      });
      this.#endFence();
    }, this.options.fenceTimeoutMs ?? 1000);
    this.#fence = { release, promise, timer };
  }

  #checkFence(): void {
    if (!this.#fence || !this.peerGroup) return;
    for (const peer of this.peerGroup.peers.values()) {
      if (!peer.live) continue;
      if (!peer.register || compareRegisters(peer.register, this.register) < 0) return;
    }
    this.#endFence();
  }

  #endFence(): void {
    const fence = this.#fence;
    if (!fence) return;
    this.#fence = null;
    clearTimeout(fence.timer);
    fence.release();
  }

  /**
   * Takes a register if it is newer than ours: persists it, passes it on to every peer, then
   * re-decides where to route (which severs sessions on the node that lost the role). Returns
   * whether it was newer.
   */
  #adopt(register: Register, source: string): boolean {
    if (
      register.cluster !== this.register.cluster || compareRegisters(register, this.register) <= 0
    ) return false;
    const previous = this.register;
    this.register = register;
    if (previous.active !== register.active) {
      const kind = register.active === null
        ? "no_node"
        : previous.active === null
        ? "initial"
        : register.reason.startsWith("switchover")
        ? "switchover"
        : "failover";
      this.counters.activeChanges[kind] = (this.counters.activeChanges[kind] ?? 0) + 1;
    }
    const message = `register epoch ${register.epoch}: active ${register.active ?? "none"} (was ${
      previous.active ?? "none"
    }), by ${register.proposer}, ${source}: ${register.reason}`;
    log.warn("{message}", {
      message,
      epoch: register.epoch,
      proposer: register.proposer,
      active: register.active,
      previous: previous.active,
      reason: register.reason,
      source,
    });
    this.events.push({
      time: Date.now(),
      kind: "register",
      message,
      data: { epoch: register.epoch, active: register.active },
    });
    if (this.options.stateFile) {
      try {
        writeStateFile(this.options.stateFile, register);
      } catch (error) {
        log.error("cannot persist the register to {file}: {error}", {
          file: this.options.stateFile,
          error: String(error),
        });
      }
    }
    if (
      previous.active !== null && register.active !== null && previous.active !== register.active
    ) {
      this.#startFence();
    }
    this.peerGroup?.push();
    this.#decide();
    this.#checkFence();
    return true;
  }

  /**
   * Runs the group rule over this proxy's view and the live peers' views: proposes a new register
   * when the group must move, and routes where the register says (or nowhere, when this proxy
   * alone sees the active node down).
   */
  #decide(): void {
    if (!this.#isReady || this.#learning) return;
    const views: Record<string, HealthView> = {
      ...this.peerGroup?.liveViews(),
      [this.name]: this.localView(),
    };
    const drained = new Set(
      [...this.backends.values()].filter((b) => b.maintenance).map((b) => b.spec.name),
    );
    const decision = decideGroup({
      self: this.name,
      register: this.register,
      views,
      drained,
      now: Date.now(),
    });
    if (decision.propose && this.#adopt(decision.propose, "decided here")) return;
    this.setActive(decision.route, decision.reason);
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
    if (!this.#isReady) {
      if ([...this.backends.values()].every((b) => b.health.status !== "unknown")) this.#setReady();
      return;
    }
    if (changed) {
      this.peerGroup?.push();
      this.#decide();
    }
  }

  /**
   * Makes `next` the node that receives traffic and severs every session on the node that held
   * the role before. The single place where the active node changes.
   */
  setActive(next: string | null, reason: string): void {
    const previous = this.active;
    if (previous === next) {
      this.activeReason = reason;
      return;
    }
    this.active = next;
    this.activeReason = reason;
    this.activeSince = next === null ? null : Date.now();
    const message = next === null
      ? `no active node: ${reason}`
      : `active node is now ${next} (was ${previous ?? "none"}): ${reason}`;
    const fields = { message, active: next, previous, reason };
    if (next === null) log.error("{message}", fields);
    else log.warn("{message}", fields);
    this.events.push({
      time: Date.now(),
      kind: "active",
      message,
      data: { active: next, previous },
    });
    const old = previous === null ? undefined : this.backends.get(previous);
    if (old) this.#sever(old, `${previous} is no longer active`);
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

  #refuse(conn: TcpConn, reason: string, message: string, code = ER_UNKNOWN_ERROR): void {
    this.counters.refused[reason] = (this.counters.refused[reason] ?? 0) + 1;
    conn.endWith(mysqlErrorPacket(code, "08004", `galerad: ${message}`));
  }

  /** Why a new session cannot be routed now, or null when it can. */
  #refusal(): { reason: string; message: string; code?: number } | null {
    if (this.draining) {
      return { reason: "shutdown", message: "proxy is shutting down", code: ER_SERVER_SHUTDOWN };
    }
    if (!this.traffic.enabled) {
      return {
        reason: "traffic_disabled",
        message: `traffic disabled by operator: ${this.traffic.message}`,
      };
    }
    if (this.active === null) {
      if (this.#learning) {
        return {
          reason: "learning",
          message: "proxy is starting and learning the active node from its peers",
        };
      }
      if (this.register.active !== null) return { reason: "minority", message: this.activeReason };
      return {
        reason: "no_active_node",
        message: "no healthy Galera node is active; try again later",
      };
    }
    return null;
  }

  async #accept(conn: ClientConn): Promise<void> {
    if (!this.#isReady) await this.#ready;
    while (this.#hold || this.#fence) await (this.#hold ?? this.#fence!.promise);
    for (let attempt = 0; attempt < 2; attempt++) {
      const refusal = this.#refusal();
      if (refusal) return this.#refuse(conn, refusal.reason, refusal.message, refusal.code);
      const backend = this.backends.get(this.active!)!;
      const session = new Session(conn, backend.spec.name);
      backend.sessions.add(session);
      let server: TcpConn;
      try {
        server = await conn.dial(backend.spec, {
          timeoutMs: this.options.connectTimeoutMs,
          keepAliveMs: this.options.keepAliveMs,
        });
        if (this.options.sendProxyV2) {
          await server.write(proxyV2Header({
            sourceAddress: conn.remoteAddress,
            sourcePort: conn.remotePort,
            destinationAddress: conn.localAddress,
            destinationPort: conn.localPort,
          })).catch((error) => {
            server.destroy();
            throw new Error(`cannot send the PROXY header to ${backend.spec.name}: ${error}`);
          });
        }
      } catch (error) {
        this.#release(backend, session);
        if (session.closed) continue; // the node was severed while we dialled: re-decide
        this.counters.connectFailures++;
        const reason = error instanceof Error ? error.message : String(error);
        log.warn("cannot reach active node {backend}: {reason}", {
          backend: backend.spec.name,
          reason,
        });
        return this.#refuse(
          conn,
          "backend_unreachable",
          `cannot reach active node ${backend.spec.name}: ${reason}`,
        );
      }
      if (session.closed || this.active !== backend.spec.name || this.#refusal()) {
        // The node stopped being active (or traffic stopped) while we dialled: never hand the
        // client to it; route it by the new state instead.
        server.destroy();
        this.#release(backend, session);
        continue;
      }
      session.server = server;
      this.counters.accepted++;
      await conn.splice(server, session.stats);
      session.closed = true;
      this.counters.bytesUp += session.stats.up;
      this.counters.bytesDown += session.stats.down;
      this.#release(backend, session);
      return;
    }
    this.#refuse(conn, "active_changed", "active node changed while connecting; try again");
  }

  #release(backend: BackendRuntime, session: Session): void {
    backend.sessions.delete(session);
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
