/**
 * Runtime adapter for Deno: `Deno.listen`/`Deno.connect` with a plain read/write loop on the
 * TCP hot path (node:net and ReadableStream.pipeTo cost more per round trip, DESIGN.md §5),
 * `Deno.serve` for HTTP, `node:dgram` with an enlarged receive buffer for UDP.
 */
import type { HostPort } from "../core/address.ts";
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

/** Engine settings read only at start: none wanted of V8 (bun.ts: JavaScriptCore's). */
export const ENGINE_ENV: Readonly<Record<string, string>> = {};

/** Never asked for (ENGINE_ENV is empty); here so every adapter has the same names. */
export function restartWithEnv(_env: Record<string, string>): void {}

/** Starts a data-plane thread running `entry` (`fromRoot` matters only in Bun's binaries). */
export function startThread(entry: URL, _fromRoot: string): Worker {
  return new Worker(entry.href, { type: "module" });
}

const BUFFER_SIZE = 64 * 1024;
const INITIAL_BUFFER_SIZE = 4 * 1024;

class DenoConn implements TcpConn {
  readonly closed: Promise<void>;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  #done = false;
  #resolve!: () => void;

  constructor(readonly conn: Deno.TcpConn) {
    const remote = conn.remoteAddr as Deno.NetAddr;
    this.remoteAddress = remote.hostname;
    this.remotePort = remote.port;
    const local = conn.localAddr as Deno.NetAddr;
    this.localAddress = local.hostname;
    this.localPort = local.port;
    this.closed = new Promise((resolve) => (this.#resolve = resolve));
  }

  get done(): boolean {
    return this.#done;
  }

  write(data: Uint8Array): Promise<void> {
    return writeAll(this.conn, data);
  }

  endWith(data: Uint8Array): void {
    writeAll(this.conn, data)
      .catch(() => {})
      .finally(() => this.destroy());
  }

  destroy(): void {
    if (this.#done) return;
    this.#done = true;
    try {
      this.conn.close();
    } catch {
      // already closed by the runtime
    }
    this.#resolve();
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) offset += await conn.write(data.subarray(offset));
}

function tune(conn: Deno.TcpConn, keepAliveMs: number): void {
  conn.setNoDelay(true);
  if (keepAliveMs > 0) conn.setKeepAlive(true);
}

/** Listens for TCP clients; each becomes a TcpConn handed to `onConnection`. */
export function listenTcp(
  address: HostPort,
  options: ListenOptions,
  onConnection: (conn: TcpConn) => void,
): Promise<TcpListener> {
  const listener = Deno.listen({
    hostname: address.host,
    port: address.port,
    transport: "tcp",
  });
  let closing = false;
  const loop = (async () => {
    while (true) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (closing || error instanceof Deno.errors.BadResource) return;
        continue; // a transient accept error (EMFILE, aborted handshake) must not stop the proxy
      }
      tune(conn, options.keepAliveMs);
      onConnection(new DenoConn(conn));
    }
  })();
  return Promise.resolve({
    port: (listener.addr as Deno.NetAddr).port,
    close: async () => {
      closing = true;
      try {
        listener.close();
      } catch {
        // already closed
      }
      await loop;
    },
  });
}

/** Dials a backend, failing with an Error naming it after `timeoutMs`. */
export async function connectTcp(address: HostPort, options: ConnectOptions): Promise<TcpConn> {
  const target = `${address.host}:${address.port}`;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const attempt = Deno.connect({ hostname: address.host, port: address.port, transport: "tcp" });
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`connect to ${target} timed out after ${options.timeoutMs}ms`)),
      options.timeoutMs,
    );
  });
  try {
    const conn = await Promise.race([attempt, timeout]);
    tune(conn, options.keepAliveMs);
    return new DenoConn(conn);
  } catch (error) {
    // A connect that completes after the timeout is closed at once.
    attempt.then((late) => late.close(), () => {});
    if (error instanceof Error && error.message.includes("timed out")) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`connect to ${target} failed: ${reason}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}

async function pump(from: DenoConn, to: DenoConn, stats: SpliceStats, key: keyof SpliceStats) {
  // Start small (an idle session holds its buffers while it waits) and grow to BUFFER_SIZE as
  // soon as a read fills the buffer (bulk transfer).
  let buffer = new Uint8Array(INITIAL_BUFFER_SIZE);
  try {
    while (true) {
      const n = await from.conn.read(buffer);
      if (n === null) break;
      stats[key] += n;
      // One write op per chunk in the common case (no extra async function, no extra promise).
      let written = await to.conn.write(n === buffer.length ? buffer : buffer.subarray(0, n));
      while (written < n) written += await to.conn.write(buffer.subarray(written, n));
      if (n === buffer.length && buffer.length < BUFFER_SIZE) buffer = new Uint8Array(BUFFER_SIZE);
    }
    // Half-close: pass the FIN on and let the other direction finish.
    await to.conn.closeWrite();
    return true;
  } catch {
    return false;
  }
}

/**
 * Pipes two connections into each other until both directions are done or either side fails;
 * resolves when both are closed. One read/write loop per direction: a write is awaited before
 * the next read, which is the back-pressure.
 */
export async function splice(client: TcpConn, server: TcpConn, stats: SpliceStats): Promise<void> {
  const a = client as DenoConn;
  const b = server as DenoConn;
  const kill = () => {
    a.destroy();
    b.destroy();
  };
  const up = pump(a, b, stats, "up").then((ok) => ok || kill());
  const down = pump(b, a, stats, "down").then((ok) => ok || kill());
  await Promise.all([up, down]);
  kill();
}

/** Serves HTTP with a fetch-style handler. */
export function serveHttp(
  address: HostPort,
  handler: FetchHandler,
  tls?: TlsFiles,
): Promise<HttpServer> {
  return new Promise((resolve) => {
    const server = Deno.serve({
      hostname: address.host,
      port: address.port,
      ...(tls ? { cert: tls.cert, key: tls.key } : {}),
      onListen: () => {},
      onError: () => new Response("internal error\n", { status: 500 }),
    }, handler);
    resolve({
      port: (server.addr as Deno.NetAddr).port,
      close: () => server.shutdown(),
    });
  });
}

export { bindUdp } from "./udp_dgram.ts";

/** `fetch` trusting `ca` (PEM) too, for agents served over https with a private CA. */
export function fetchTrusting(ca: string | null): Fetch {
  if (ca === null) return (input, init) => fetch(input, init);
  const client = Deno.createHttpClient({ caCerts: [ca] });
  return (input, init) => fetch(input, { ...init, client } as RequestInit);
}
