/**
 * Where client sessions run. By default on epoll threads (epoll_worker.ts: Linux's epoll and
 * recv/send through the runtime's FFI, less CPU per query than HAProxy here), all workers. On
 * the runtime's own sockets otherwise: with one thread on the main thread, with more on the main
 * thread and data_worker.ts threads. Every thread listens on the proxy port with SO_REUSEPORT,
 * as HAProxy's `nbthread` does: on a busy host a proxy that is a single runnable thread waits
 * for the CPU behind the database and its clients; measured here, two threads carried 9-47%
 * more point selects than one at 8-128 clients (docs/BENCHMARKS.md). The main thread keeps
 * every decision (it answers each new client with "dial this node" or "refuse"), so the proxy
 * logic is the same whichever plane runs underneath.
 */
import { connectTcp, dataThreadsSupported, listenTcp, splice } from "#runtime";
import { loadLibc } from "#ffi";
import { getLogger } from "@logtape/logtape";
import { type HostPort, parseIp } from "../core/address.ts";
import {
  demand,
  DEMAND_WINDOW_MS,
  meanDemand,
  parseSchedstat,
  shouldGrow,
  type ThreadTimes,
} from "../core/threads.ts";
import { readFileSync } from "node:fs";
import type { Libc } from "./libc.ts";
import { QuietCollector, releaseAfterStart } from "./release_memory.ts";
import type { FromWorker, ToWorker } from "./data_messages.ts";
import type { ConnectOptions, ListenOptions, SpliceStats, TcpConn, TcpListener } from "./types.ts";

/** An accepted client, with the two steps the proxy takes on it. */
export interface ClientConn extends TcpConn {
  /** Dials `target` from wherever this client lives; the result is the backend side. */
  dial(target: HostPort, options: ConnectOptions): Promise<TcpConn>;
  /** Pipes the client and `server` until both are closed, adding to `stats` as data passes. */
  splice(server: TcpConn, stats: SpliceStats): Promise<void>;
}

/**
 * What carries the bytes: `epoll` threads (epoll_worker.ts: Linux's epoll and recv/send through
 * the runtime's FFI, the cheapest per packet), or the runtime's own `sockets` (the main thread,
 * plus data_worker.ts threads); `auto` is epoll where it loads (Linux, glibc, Bun or Deno).
 */
export const DATA_PLANE_KINDS = ["auto", "epoll", "sockets"] as const;
export type DataPlaneKind = (typeof DATA_PLANE_KINDS)[number];

export interface DataPlane {
  /** Threads carrying sessions now (1: the main thread); `--threads auto` adds some under load. */
  readonly threads: number;
  /** What carries the bytes, once listening: "epoll" or "sockets". */
  readonly kind: "epoll" | "sockets";
  listen(
    address: HostPort,
    options: ListenOptions,
    onConnection: (conn: ClientConn) => void,
  ): Promise<TcpListener>;
}

const hasWorkers = typeof (globalThis as { Worker?: unknown }).Worker === "function";

/** Whether this runtime can run the socket data plane on worker threads. */
export const threadsSupported: boolean = dataThreadsSupported && hasWorkers;

function warnOneThread(threads: number): void {
  log.warn(
    "--threads {threads}: this runtime cannot share the port between threads (Deno needs " +
      "--unstable-net); sessions run on the main thread",
    { threads },
  );
}

/** Growing the epoll threads under load (`--threads auto`, core/threads.ts). */
export interface ThreadGrowth {
  /** The most threads to grow to. */
  max: number;
  /** How often the threads' demand is read (DEMAND_WINDOW_MS unless a test asks otherwise). */
  windowMs?: number;
}

/**
 * The data plane for `threads` threads of `kind`. Sockets on one thread (or on a runtime without
 * threads) run on the main thread; epoll threads are always workers, the main thread keeps the
 * decisions, health checks and API. With `growth`, epoll threads are added one at a time while
 * the ones running are in demand (the sockets plane stays at `threads`).
 */
export function openDataPlane(
  threads: number,
  kind: DataPlaneKind = "auto",
  growth?: ThreadGrowth,
): DataPlane {
  if (kind !== "sockets" && hasWorkers) return new ThreadedPlane(threads, kind, growth);
  if (threads > 1 && !threadsSupported) warnOneThread(threads);
  return threads > 1 && threadsSupported ? new ThreadedPlane(threads, "sockets") : localPlane;
}

const log = getLogger(["galerad", "proxy"]);

// ---- main thread -------------------------------------------------------------------------------

class LocalClient implements ClientConn {
  constructor(readonly conn: TcpConn) {}
  get remoteAddress() {
    return this.conn.remoteAddress;
  }
  get remotePort() {
    return this.conn.remotePort;
  }
  get localAddress() {
    return this.conn.localAddress;
  }
  get localPort() {
    return this.conn.localPort;
  }
  get closed() {
    return this.conn.closed;
  }
  write(data: Uint8Array): Promise<void> {
    return this.conn.write(data);
  }
  endWith(data: Uint8Array): void {
    this.conn.endWith(data);
  }
  destroy(): void {
    this.conn.destroy();
  }
  dial(target: HostPort, options: ConnectOptions): Promise<TcpConn> {
    return connectTcp(target, options);
  }
  splice(server: TcpConn, stats: SpliceStats): Promise<void> {
    return splice(this.conn, server, stats);
  }
}

const localPlane: DataPlane = {
  threads: 1,
  kind: "sockets",
  listen: (address, options, onConnection) =>
    listenTcp(address, options, (conn) => onConnection(new LocalClient(conn))),
};

// ---- worker threads ----------------------------------------------------------------------------

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

/**
 * The worker's module. Inside a `bun build --compile` binary every module's `import.meta.url` is
 * the binary itself and the worker is an extra entry point, found by its path from the project
 * root (compile.sh adds it).
 */
function workerUrl(file: string): string {
  return import.meta.url.includes("/$bunfs/")
    ? `./src/runtime/${file}`
    : new URL(`./${file}`, import.meta.url).href;
}

/** An eventfd counter increment (8 bytes, little-endian 1). */
const WAKE = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);

/** A node's address as an IP literal (epoll threads dial addresses, not names). */
async function resolveIp(host: string): Promise<string> {
  if (parseIp(host)) return host.replace(/^\[(.*)\]$/, "$1");
  // node:dns is loaded only for a name: most deployments give addresses.
  const { lookup } = await import("node:dns/promises");
  return (await lookup(host)).address;
}

/** One data-plane thread as the main thread sees it. */
class Thread {
  readonly worker: Worker;
  readonly clients = new Map<number, RemoteClient>();
  /** Epoll threads: messages sent (shared with the thread) and the eventfd that wakes it. */
  readonly mailbox: Int32Array | null;
  wakeFd = -1;
  /** Epoll threads: the thread's id, and its schedstat at the last reading (ThreadedPlane). */
  tid = -1;
  times: ThreadTimes | null = null;
  timesAt = 0;
  #requests = new Map<number, Waiter>();
  #nextRequest = 1;
  #control: ((message: FromWorker) => void) | null = null;

  constructor(
    readonly plane: ThreadedPlane,
    readonly onConnection: (conn: ClientConn) => void,
    readonly libc: Libc | null,
  ) {
    this.mailbox = libc ? new Int32Array(new SharedArrayBuffer(4)) : null;
    // `smol` (Bun): JavaScriptCore's small heap. An epoll thread allocates next to nothing per
    // packet, and each thread's heap counts in the proxy's memory.
    this.worker = new Worker(workerUrl(libc ? "epoll_worker.ts" : "data_worker.ts"), {
      type: "module",
      smol: libc !== null,
    } as WorkerOptions);
    this.worker.onmessage = (event: MessageEvent<FromWorker>) => this.#receive(event.data);
    this.worker.onerror = (event: ErrorEvent) => {
      event.preventDefault?.();
      this.#fail(event.message || "data-plane thread failed");
    };
  }

  post(message: ToWorker): void {
    if (message[0] === "destroy") {
      // Gathered until the current task ends: severing a node's sessions is one message.
      if (this.#destroys.length === 0) queueMicrotask(() => this.#flushDestroys());
      this.#destroys.push([message[1], message[2]]);
      return;
    }
    this.#send(message);
  }

  #destroys: [number, "client" | "server"][] = [];

  #flushDestroys(): void {
    const targets = this.#destroys;
    this.#destroys = [];
    if (targets.length === 1) this.#send(["destroy", ...targets[0]]);
    else if (targets.length > 1) this.#send(["destroyMany", targets]);
  }

  #send(message: ToWorker): void {
    if (this.mailbox) Atomics.add(this.mailbox, 0, 1);
    this.worker.postMessage(message);
    if (this.wakeFd >= 0) this.libc!.write(this.wakeFd, WAKE, 8);
  }

  /** Ends the thread (an epoll thread leaves its loop and closes its descriptors first). */
  terminate(): void {
    if (this.wakeFd >= 0) this.post(["quit"]);
    this.wakeFd = -1; // closed by the thread after "quit": never written again
    // Give an epoll thread a moment to leave epoll_wait before it is stopped.
    if (this.libc) setTimeout(() => this.worker.terminate(), 100);
    else this.worker.terminate();
  }

  /** Sends a request and resolves when the thread answers `done`. */
  request(build: (request: number) => ToWorker): Promise<void> {
    const request = this.#nextRequest++;
    return new Promise((resolve, reject) => {
      this.#requests.set(request, { resolve, reject });
      this.post(build(request));
    });
  }

  /** Sends a control message and waits for the next control answer. */
  control(message: ToWorker): Promise<FromWorker> {
    return new Promise((resolve) => {
      this.#control = resolve;
      this.post(message);
    });
  }

  #receive(message: FromWorker): void {
    switch (message[0]) {
      case "open": {
        const [, id, remoteAddress, remotePort, localAddress, localPort] = message;
        const client = new RemoteClient(this, id, {
          remoteAddress,
          remotePort,
          localAddress,
          localPort,
        });
        this.clients.set(id, client);
        this.plane.collector.note();
        this.onConnection(client);
        return;
      }
      case "bytes": {
        const changed = message[1];
        for (let i = 0; i < changed.length; i += 3) {
          this.clients.get(changed[i])?.setBytes(changed[i + 1], changed[i + 2]);
        }
        return;
      }
      case "closed": {
        const [, id, up, down] = message;
        const client = this.clients.get(id);
        if (!client) return;
        this.clients.delete(id);
        client.setBytes(up, down);
        client.markClosed();
        this.plane.sessionEnded(this);
        return;
      }
      case "done":
      case "failed": {
        const waiter = this.#requests.get(message[1]);
        if (!waiter) return;
        this.#requests.delete(message[1]);
        if (message[0] === "done") waiter.resolve();
        else waiter.reject(new Error(message[2]));
        return;
      }
      case "fault":
        log.error("data-plane thread error: {reason}", { reason: message[1] });
        return;
      default: {
        const control = this.#control;
        this.#control = null;
        control?.(message);
      }
    }
  }

  /** A thread that broke: its sessions are gone; the plane starts a replacement. */
  #fail(why: string): void {
    this.wakeFd = -1;
    this.worker.terminate();
    for (const waiter of this.#requests.values()) waiter.reject(new Error(why));
    this.#requests.clear();
    for (const client of this.clients.values()) client.markClosed();
    this.clients.clear();
    this.#control?.(["listenFailed", why, ""]);
    this.#control = null;
    this.plane.threadFailed(this, why);
  }
}

class RemoteServer implements TcpConn {
  constructor(readonly client: RemoteClient) {}
  get remoteAddress() {
    return "";
  }
  get remotePort() {
    return 0;
  }
  get localAddress() {
    return "";
  }
  get localPort() {
    return 0;
  }
  get closed() {
    return this.client.closed;
  }
  write(data: Uint8Array): Promise<void> {
    const { thread, id } = this.client;
    return thread.request((r) => ["write", r, id, "server", data]);
  }
  endWith(data: Uint8Array): void {
    this.write(data).catch(() => {}).finally(() => this.destroy());
  }
  destroy(): void {
    this.client.thread.post(["destroy", this.client.id, "server"]);
  }
}

/** A client accepted by a data-plane thread; the session itself lives there. */
class RemoteClient implements ClientConn {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly closed: Promise<void>;
  #markClosed!: () => void;
  #stats: SpliceStats | null = null;
  #isClosed = false;

  constructor(
    readonly thread: Thread,
    readonly id: number,
    address: { remoteAddress: string; remotePort: number; localAddress: string; localPort: number },
  ) {
    this.remoteAddress = address.remoteAddress;
    this.remotePort = address.remotePort;
    this.localAddress = address.localAddress;
    this.localPort = address.localPort;
    this.closed = new Promise((resolve) => (this.#markClosed = resolve));
  }

  setBytes(up: number, down: number): void {
    if (!this.#stats) return;
    this.#stats.up = up;
    this.#stats.down = down;
  }

  markClosed(): void {
    this.#isClosed = true;
    this.#markClosed();
  }

  write(data: Uint8Array): Promise<void> {
    if (this.#isClosed) return Promise.reject(new Error("connection closed"));
    return this.thread.request((r) => ["write", r, this.id, "client", data]);
  }
  endWith(data: Uint8Array): void {
    if (!this.#isClosed) this.thread.post(["endWith", this.id, data]);
  }
  destroy(): void {
    if (!this.#isClosed) this.thread.post(["destroy", this.id, "client"]);
  }
  async dial(target: HostPort, options: ConnectOptions): Promise<TcpConn> {
    if (this.#isClosed) throw new Error("client closed");
    let host = target.host;
    if (this.thread.libc) {
      try {
        host = await resolveIp(host);
      } catch (error) {
        const code = (error as { code?: string }).code ?? String(error);
        throw new Error(`connect to ${target.host}:${target.port} failed: ${code}`);
      }
    }
    await this.thread.request((r) => [
      "dial",
      r,
      this.id,
      host,
      target.port,
      options.timeoutMs,
      options.keepAliveMs,
    ]);
    return new RemoteServer(this);
  }
  splice(_server: TcpConn, stats: SpliceStats): Promise<void> {
    this.#stats = stats;
    if (!this.#isClosed) this.thread.post(["splice", this.id]);
    return this.closed;
  }
}

class ThreadedPlane implements DataPlane {
  kind: "epoll" | "sockets" = "sockets";
  #libc: Libc | null = null;
  #threads = new Set<Thread>();
  #local: TcpListener | null = null;
  #address: HostPort | null = null;
  #options: ListenOptions | null = null;
  #onConnection: ((conn: ClientConn) => void) | null = null;
  /** close() was called: no thread is restarted. */
  #stopping = false;
  /** Every thread has stopped listening: a thread ends with its last session. */
  #stopped = false;

  /** Collects what a burst of new sessions left on the main thread (release_memory.ts). */
  readonly collector = new QuietCollector();
  #growth: ThreadGrowth | null;
  #growTimer: ReturnType<typeof setInterval> | null = null;
  #growing = false;

  constructor(public threads: number, readonly wanted: DataPlaneKind, growth?: ThreadGrowth) {
    this.#growth = growth && growth.max > threads ? growth : null;
  }

  async listen(
    address: HostPort,
    options: ListenOptions,
    onConnection: (conn: ClientConn) => void,
  ): Promise<TcpListener> {
    // Bind once without SO_REUSEPORT first: a port another program holds fails here as it would
    // with one thread, and port 0 becomes a concrete port the threads then share.
    const probe = await listenTcp(
      address,
      { keepAliveMs: options.keepAliveMs },
      (conn) => conn.destroy(),
    );
    const port = probe.port;
    await probe.close();
    this.#options = options;
    this.#onConnection = onConnection;
    if (this.wanted !== "sockets") this.#libc = await loadLibc();
    if (this.wanted === "epoll" && !this.#libc) {
      log.warn(
        "--data-plane epoll: this runtime or system cannot load libc's socket calls (Linux " +
          "with glibc under Bun or Deno is needed); using the runtime's sockets",
      );
    }
    this.kind = this.#libc ? "epoll" : "sockets";
    if (!this.#libc && (this.threads === 1 || !threadsSupported)) {
      if (this.threads > 1) warnOneThread(this.threads);
      this.threads = 1;
      return localPlane.listen({ host: address.host, port }, options, onConnection);
    }
    this.#address = {
      host: this.#libc ? await resolveIp(address.host) : address.host,
      port,
    };
    try {
      if (!this.#libc) {
        // With the runtime's sockets the main thread is one of the threads: it listens too,
        // and its sessions cost no messages. The others are workers. Epoll threads are all
        // workers (each blocks in epoll_wait).
        this.#local = await localPlane.listen(
          this.#address,
          { ...options, reusePort: true },
          onConnection,
        );
      }
      const workers = this.#libc ? this.threads : this.threads - 1;
      await Promise.all(Array.from({ length: workers }, () => this.#start()));
      // What starting up left (configuration, modules run once) is given back, once.
      releaseAfterStart();
      if (this.#libc && this.#growth) this.#watchDemand(this.#growth);
    } catch (error) {
      await this.#local?.close();
      for (const thread of this.#threads) thread.terminate();
      this.#threads.clear();
      // A binary built without the worker entry points (compile.sh adds them) still proxies.
      if (!/ModuleNotFound|data_worker|epoll_worker/.test(String(error))) throw error;
      log.warn(
        "--threads {threads}: this build lacks the data-plane thread module (build with " +
          "compile.sh); sessions run on the main thread",
        { threads: this.threads, reason: String(error) },
      );
      this.threads = 1;
      this.kind = "sockets";
      return localPlane.listen({ host: address.host, port }, options, onConnection);
    }
    return { port, close: () => this.#stop() };
  }

  async #start(): Promise<void> {
    const thread = new Thread(this, this.#onConnection!, this.#libc);
    this.#threads.add(thread);
    const { host, port } = this.#address!;
    const answer = await thread.control([
      "listen",
      host,
      port,
      this.#options!.keepAliveMs,
      thread.mailbox?.buffer as SharedArrayBuffer | undefined,
    ]);
    if (answer[0] !== "listening") {
      this.#threads.delete(thread);
      thread.terminate();
      const [, message, code] = answer as ["listenFailed", string, string];
      throw Object.assign(new Error(message), { code: code || undefined });
    }
    if (this.#libc) {
      thread.wakeFd = answer[2] ?? -1;
      thread.tid = answer[3] ?? -1;
    }
  }

  /** Reads the threads' demand every window and adds a thread while it is high enough. */
  #watchDemand(growth: ThreadGrowth): void {
    const windowMs = growth.windowMs ?? DEMAND_WINDOW_MS;
    this.#growTimer = setInterval(() => this.#checkDemand(growth.max, windowMs), windowMs);
    // Never what keeps the process alive.
    (this.#growTimer as { unref?: () => void }).unref?.();
  }

  #stopWatching(): void {
    if (this.#growTimer) clearInterval(this.#growTimer);
    this.#growTimer = null;
  }

  #checkDemand(max: number, windowMs: number): void {
    if (this.#stopping || this.threads >= max) return this.#stopWatching();
    if (this.#growing) return;
    const at = performance.now();
    const demands: number[] = [];
    let complete = true;
    for (const thread of this.#threads) {
      const times = thread.tid > 0 ? readThreadTimes(thread.tid) : null;
      if (!times) {
        log.warn(
          "--threads auto: cannot read the data-plane threads' load (/proc/self/task/*/schedstat); " +
            "staying at {threads} threads",
          { threads: this.threads },
        );
        return this.#stopWatching();
      }
      if (thread.times) demands.push(demand(thread.times, times, (at - thread.timesAt) * 1e6));
      else complete = false; // started since the last reading: its first window starts now
      thread.times = times;
      thread.timesAt = at;
    }
    if (!complete || !shouldGrow(demands, this.threads, max)) return;
    this.#growing = true;
    this.#start().then(
      () => {
        this.threads++;
        log.info(
          "--threads auto: {from} → {to} data-plane threads (they wanted a CPU {demand}% of " +
            "the last {window} s)",
          {
            from: this.threads - 1,
            to: this.threads,
            demand: Math.round(meanDemand(demands) * 100),
            window: windowMs / 1000,
          },
        );
      },
      (error) => {
        log.error("--threads auto: cannot start another data-plane thread: {reason}", {
          reason: String(error),
        });
        this.#stopWatching();
      },
    ).finally(() => (this.#growing = false));
  }

  /** Stops accepting on every thread; a thread ends once its last session has. */
  async #stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#stopWatching();
    await Promise.all([
      this.#local?.close(),
      ...[...this.#threads].map((thread) => thread.control(["stop"])),
    ]);
    this.#stopped = true;
    for (const thread of this.#threads) this.sessionEnded(thread);
  }

  sessionEnded(thread: Thread): void {
    if (!this.#stopped || thread.clients.size > 0) return;
    this.#threads.delete(thread);
    thread.terminate();
  }

  threadFailed(thread: Thread, why: string): void {
    if (!this.#threads.delete(thread) || this.#stopping || !this.#address) return;
    log.error("data-plane thread failed ({reason}); its sessions are closed; starting another", {
      reason: why,
    });
    this.#start().catch((error) =>
      log.error("cannot restart a data-plane thread: {reason}", { reason: String(error) })
    );
  }
}

/** A thread's schedstat (time on a CPU and waiting for one); null where Linux does not give it. */
function readThreadTimes(tid: number): ThreadTimes | null {
  try {
    return parseSchedstat(readFileSync(`/proc/self/task/${tid}/schedstat`, "utf8"));
  } catch {
    return null;
  }
}
