/**
 * Runtime adapter for Bun: Bun's native sockets (`Bun.listen`/`Bun.connect`) on the TCP hot path,
 * which cost less CPU per round trip than `node:net` under Bun (DESIGN.md §5, measured again in
 * docs/BENCHMARKS.md); HTTP with `Bun.serve`; UDP with node:dgram (udp_dgram.ts).
 */
import process from "node:process";
import { formatHostPort, type HostPort } from "../core/address.ts";
import type {
  ConnectOptions,
  Fetch,
  FetchHandler,
  HttpServer,
  ListenOptions,
  SpliceStats,
  TcpConn,
  TcpListener,
  TlsFiles,
} from "./types.ts";

export { bindUdp } from "./udp_dgram.ts";

/** The part of Bun's API used here, typed locally so `deno check` needs no Bun types. */
interface BunServe {
  serve(options: {
    hostname: string;
    port: number;
    fetch: FetchHandler;
    idleTimeout: number;
    tls?: { cert: string; key: string };
    error: () => Response;
  }): { port?: number; stop(force: boolean): Promise<void> | void };
}

/**
 * What JavaScriptCore should start with for the proxy (core/engine_env.ts): no FTL, its top
 * tier. In a reconnect storm the session path first crosses FTL's threshold and is compiled a
 * second time, on a core the storm needs; the tier below carries the data path nearly as well
 * (docs/BENCHMARKS.md, "Notes: sessions at scale").
 */
export const ENGINE_ENV: Readonly<Record<string, string>> = { BUN_JSC_useFTLJIT: "0" };

/**
 * Starts this program again in place, `env` added: the same process id (systemd's main PID,
 * its notify socket), runtime flags and arguments. Does not return; throws if the exec failed.
 */
export function restartWithEnv(env: Record<string, string>): void {
  const node = process as unknown as {
    execve(file: string, args: string[], env: Record<string, string | undefined>): never;
  };
  // In a compiled binary argv[1] is the embedded entry ("/$bunfs/…"), not an argument, and
  // the flags built in come back by themselves.
  const compiled = process.argv[1]?.startsWith("/$bunfs/") ?? false;
  const args = compiled ? process.argv.slice(2) : [...process.execArgv, ...process.argv.slice(1)];
  node.execve(process.execPath, [process.argv0, ...args], { ...process.env, ...env });
}

/** Serves HTTP with a fetch-style handler; a port that cannot be bound rejects (never throws). */
export function serveHttp(
  address: HostPort,
  handler: FetchHandler,
  tls?: TlsFiles,
): Promise<HttpServer> {
  try {
    return Promise.resolve(listenHttp(address, handler, tls));
  } catch (error) {
    return Promise.reject(error);
  }
}

function listenHttp(address: HostPort, handler: FetchHandler, tls?: TlsFiles): HttpServer {
  const server = (globalThis as unknown as { Bun: BunServe }).Bun.serve({
    hostname: address.host,
    port: address.port,
    ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
    // A request without a Host header (HTTP/1.0, as HAProxy's default httpchk sends) reaches
    // Bun with a bare path for its URL, which routers cannot match: make it absolute.
    fetch: (request: Request) =>
      request.url.startsWith("/")
        ? handler(new Request(`http://${formatHostPort(address)}${request.url}`, request))
        : handler(request),
    idleTimeout: 30,
    error: () => new Response("internal error\n", { status: 500 }),
  });
  return {
    port: server.port ?? address.port,
    close: async () => {
      await server.stop(true);
    },
  };
}

/** `fetch` trusting `ca` (PEM) too, for agents served over https with a private CA. */
export function fetchTrusting(ca: string | null): Fetch {
  if (ca === null) return (input, init) => fetch(input, init);
  return (input, init) => fetch(input, { ...init, tls: { ca } } as RequestInit);
}

/**
 * Starts a data-plane thread running `entry`. Inside a `bun build --compile` binary every
 * module's URL is the binary itself and the thread is an extra entry point, found by its path
 * from the project root (`fromRoot`, which compile.sh adds). `smol`: JavaScriptCore's small
 * heap; an epoll thread allocates next to nothing per packet, and each heap counts.
 */
export function startThread(entry: URL, fromRoot: string): Worker {
  const url = import.meta.url.includes("/$bunfs/") ? `./${fromRoot}` : entry.href;
  return new Worker(url, { type: "module", smol: true } as WorkerOptions);
}

/** The part of Bun's socket API used here, typed locally so `deno check` needs no Bun types. */
interface NativeSocket {
  data: BunConn;
  readonly remoteAddress: string;
  readonly remotePort?: number;
  readonly localAddress?: string;
  readonly localPort: number;
  write(data: Uint8Array): number;
  end(data?: Uint8Array): void;
  shutdown(halfClose?: boolean): void;
  terminate(): void;
  pause(): void;
  resume(): void;
  setNoDelay(on: boolean): boolean;
  setKeepAlive(on: boolean, delayMs: number): boolean;
}

interface Handlers {
  open(socket: NativeSocket): void;
  data(socket: NativeSocket, data: Uint8Array): void;
  drain(socket: NativeSocket): void;
  end(socket: NativeSocket): void;
  close(socket: NativeSocket): void;
  error(socket: NativeSocket, error: Error): void;
  connectError?(socket: NativeSocket, error: Error): void;
}

interface BunNet {
  listen(
    options: {
      hostname: string;
      port: number;
      allowHalfOpen: boolean;
      socket: Handlers;
    },
  ): {
    port: number;
    stop(closeActive?: boolean): void;
  };
  connect(
    options: {
      hostname: string;
      port: number;
      allowHalfOpen: boolean;
      socket: Handlers;
      data: BunConn;
    },
  ): Promise<
    NativeSocket
  >;
}

const bun = (globalThis as unknown as { Bun: BunNet }).Bun;

/**
 * One native socket and its splice state. Data that arrives before the splice (while the proxy
 * dials the backend) is held with the socket paused; a write the kernel takes only in part keeps
 * the rest here and pauses the other side until `drain`.
 */
class BunConn implements TcpConn {
  socket!: NativeSocket;
  remoteAddress = "";
  remotePort = 0;
  localAddress = "";
  localPort = 0;
  readonly closed: Promise<void>;
  #resolveClosed!: () => void;
  isClosed = false;
  /** Bytes not yet taken by the kernel. */
  queue: Uint8Array[] = [];
  /** The peer of a splice: where our data goes. */
  peer: BunConn | null = null;
  stats: SpliceStats | null = null;
  statKey: keyof SpliceStats = "up";
  /** Our side sent FIN (read end reached). */
  readEnded = false;
  /** We passed a FIN on to this socket. */
  writeEnded = false;
  /** Data that came before the splice. */
  early: Uint8Array[] = [];
  earlyEnd = false;
  #writeWaiters: (() => void)[] = [];
  #endAfterFlush = false;
  #closeWhenFlushed = false;

  constructor() {
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  attach(socket: NativeSocket, keepAliveMs: number): void {
    this.socket = socket;
    socket.data = this;
    this.remoteAddress = socket.remoteAddress ?? "";
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = socket.localAddress ?? "";
    this.localPort = socket.localPort ?? 0;
    socket.setNoDelay(true);
    if (keepAliveMs > 0) socket.setKeepAlive(true, keepAliveMs);
  }

  /** Writes now or queues the rest; false when the kernel did not take everything. */
  send(data: Uint8Array): boolean {
    if (this.isClosed) return true;
    if (this.queue.length > 0) {
      this.queue.push(data.slice());
      return false;
    }
    const n = this.socket.write(data);
    if (n >= data.length) return true;
    this.queue.push(data.slice(Math.max(0, n)));
    return false;
  }

  /** `drain`: flush what is queued; true when it is empty. */
  flush(): boolean {
    while (this.queue.length > 0) {
      const chunk = this.queue[0];
      const n = this.socket.write(chunk);
      if (n < chunk.length) {
        this.queue[0] = chunk.subarray(Math.max(0, n));
        return false;
      }
      this.queue.shift();
    }
    for (const w of this.#writeWaiters.splice(0)) w();
    if (this.#endAfterFlush) this.#finish();
    return true;
  }

  /** Passes a FIN on once everything queued is written (half-close). */
  endWrite(): void {
    if (this.writeEnded || this.isClosed) return;
    this.writeEnded = true;
    if (this.queue.length > 0) this.#endAfterFlush = true;
    else this.#finish();
  }

  #finish(): void {
    this.#endAfterFlush = false;
    this.socket.shutdown();
    if (this.#closeWhenFlushed) this.destroy(true);
    else this.settle();
  }

  /** Its peer is gone: sends what is queued, then FIN, then closes. */
  closeAfterFlush(): void {
    if (this.isClosed) return;
    this.#closeWhenFlushed = true;
    this.endWrite();
    if (this.queue.length === 0) this.destroy(true);
  }

  /** Both directions through this socket are over: FIN read, and FIN sent after every byte. */
  get done(): boolean {
    return this.readEnded && this.writeEnded && !this.#endAfterFlush && this.queue.length === 0;
  }

  /**
   * Closes the pair once both sockets are done. Not before: the peer may still hold bytes for
   * its side (a big result's tail behind the backend's FIN).
   */
  settle(): void {
    if (this.done && (!this.peer || this.peer.done)) this.destroy(true);
  }

  write(data: Uint8Array): Promise<void> {
    if (this.isClosed) return Promise.reject(new Error("connection closed"));
    if (this.send(data)) return Promise.resolve();
    return new Promise((resolve) => this.#writeWaiters.push(resolve));
  }

  endWith(data: Uint8Array): void {
    if (this.isClosed) return;
    this.socket.end(data);
    setTimeout(() => this.destroy(), 2000);
  }

  /**
   * Closes the connection. Torn down at once (a severed session, an error), it takes its peer
   * along. `graceful` (this side is finished, not failed) lets the kernel send what it holds,
   * and the peer closes only once it has sent its own queue: the tail of a result can still be
   * on its way to a slow client when the backend's side is long closed.
   */
  destroy(graceful = false): void {
    if (this.isClosed) return;
    this.isClosed = true;
    try {
      if (graceful) this.socket.end();
      else this.socket.terminate();
    } catch {
      // already gone
    }
    this.#resolveClosed();
    for (const w of this.#writeWaiters.splice(0)) w();
    if (graceful) this.peer?.closeAfterFlush();
    else this.peer?.destroy();
  }
}

function handlers(keepAliveMs: number, onOpen?: (conn: BunConn) => void): Handlers {
  return {
    open(socket) {
      const conn = socket.data instanceof BunConn ? socket.data : new BunConn();
      conn.attach(socket, keepAliveMs);
      if (onOpen) {
        socket.pause(); // held until the splice starts
        onOpen(conn);
      }
    },
    data(socket, data) {
      const conn = socket.data;
      const peer = conn.peer;
      if (!peer) {
        conn.early.push(data.slice());
        return;
      }
      conn.stats![conn.statKey] += data.length;
      if (!peer.send(data)) socket.pause();
    },
    drain(socket) {
      const conn = socket.data;
      if (conn.flush()) conn.peer?.socket.resume();
    },
    end(socket) {
      const conn = socket.data;
      conn.readEnded = true;
      if (!conn.peer) {
        conn.earlyEnd = true;
        return;
      }
      conn.peer.endWrite();
      conn.settle();
    },
    close(socket) {
      const conn = socket.data;
      // Closed without an error (that comes through `error`): what its peer still holds for
      // the other side is delivered first.
      conn?.destroy(true);
    },
    error(socket) {
      socket.data?.destroy();
    },
  };
}

/** Listens for TCP clients; each becomes a TcpConn handed to `onConnection`. */
export function listenTcp(
  address: HostPort,
  options: ListenOptions,
  onConnection: (conn: TcpConn) => void,
): Promise<TcpListener> {
  try {
    const server = bun.listen({
      hostname: address.host,
      port: address.port,
      allowHalfOpen: true,
      socket: handlers(options.keepAliveMs, onConnection),
    });
    return Promise.resolve({
      port: server.port,
      close: () => {
        server.stop(false);
        return Promise.resolve();
      },
    });
  } catch (error) {
    const e = error as { code?: string; message?: string };
    return Promise.reject(
      Object.assign(new Error(e.message ?? String(error)), { code: e.code, cause: error }),
    );
  }
}

/** Dials a backend, failing with an Error naming it after `timeoutMs`. */
export async function connectTcp(address: HostPort, options: ConnectOptions): Promise<TcpConn> {
  const target = `${address.host}:${address.port}`;
  const conn = new BunConn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const attempt = bun.connect({
    hostname: address.host,
    port: address.port,
    allowHalfOpen: true,
    data: conn,
    socket: handlers(options.keepAliveMs),
  });
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`connect to ${target} timed out after ${options.timeoutMs}ms`)),
      options.timeoutMs,
    );
  });
  try {
    const socket = await Promise.race([attempt, timeout]);
    socket.pause(); // held until the splice starts
    return conn;
  } catch (error) {
    attempt.then((late) => late.terminate(), () => {});
    if (error instanceof Error && error.message.includes("timed out")) throw error;
    const e = error as { code?: string; message?: string };
    throw new Error(`connect to ${target} failed: ${e.code ?? e.message ?? String(error)}`, {
      cause: error,
    });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Pipes two connections into each other until both directions are done or either side fails;
 * resolves when both are closed. Data is written as it arrives; a partial write pauses the
 * reader until the writer drains.
 */
export function splice(client: TcpConn, server: TcpConn, stats: SpliceStats): Promise<void> {
  const a = client as BunConn;
  const b = server as BunConn;
  a.peer = b;
  b.peer = a;
  a.stats = b.stats = stats;
  a.statKey = "up";
  b.statKey = "down";
  for (const [from, to] of [[a, b], [b, a]] as const) {
    for (const chunk of from.early.splice(0)) {
      stats[from.statKey] += chunk.length;
      to.send(chunk);
    }
    if (from.earlyEnd) to.endWrite();
  }
  if (!a.isClosed) a.socket.resume();
  if (!b.isClosed) b.socket.resume();
  return Promise.all([a.closed, b.closed]).then(() => {});
}
