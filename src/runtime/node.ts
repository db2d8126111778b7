/**
 * Runtime adapter for a Node-compatible runtime: `node:net` sockets for the TCP hot path,
 * `node:http` for HTTP, `node:dgram` for UDP (both loaded only when used: node_http.ts,
 * udp_dgram.ts).
 */
import net from "node:net";
import type { HostPort } from "../core/address.ts";
import type {
  ConnectOptions,
  Fetch,
  ListenOptions,
  SpliceStats,
  TcpConn,
  TcpListener,
} from "./types.ts";

/** Engine settings read only at start: none wanted of V8 (bun.ts: JavaScriptCore's). */
export const ENGINE_ENV: Readonly<Record<string, string>> = {};

/** Never asked for (ENGINE_ENV is empty); here so every adapter has the same names. */
export function restartWithEnv(_env: Record<string, string>): void {}

/** Node has no FFI, so no epoll plane and no data-plane thread to start. */
export function startThread(_entry: URL, fromRoot: string): Worker {
  throw new Error(`data-plane threads (${fromRoot}) need Bun or Deno`);
}

class NodeConn implements TcpConn {
  readonly closed: Promise<void>;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;

  constructor(readonly socket: net.Socket) {
    this.remoteAddress = socket.remoteAddress ?? "";
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = socket.localAddress ?? "";
    this.localPort = socket.localPort ?? 0;
    // An error before a splice is attached must not crash the process; close follows it.
    socket.on("error", () => {});
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
  }

  write(data: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.write(data, (error) => (error ? reject(error) : resolve()))
    );
  }

  endWith(data: Uint8Array): void {
    if (this.socket.destroyed) return;
    this.socket.resume();
    this.socket.end(data);
    // A client that never reads must not keep the socket: give it a moment, then drop it.
    setTimeout(() => this.socket.destroy(), 2000).unref?.();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function tune(socket: net.Socket, keepAliveMs: number): void {
  socket.setNoDelay(true);
  if (keepAliveMs > 0) socket.setKeepAlive(true, keepAliveMs);
}

/** Listens for TCP clients; each becomes a TcpConn handed to `onConnection`. */
export function listenTcp(
  address: HostPort,
  options: ListenOptions,
  onConnection: (conn: TcpConn) => void,
): Promise<TcpListener> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
    tune(socket, options.keepAliveMs);
    onConnection(new NodeConn(socket));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: address.host, port: address.port, backlog: 1024 }, () => {
      server.off("error", reject);
      server.on("error", () => {});
      const bound = server.address();
      const port = typeof bound === "object" && bound ? bound.port : address.port;
      resolve({
        port,
        // server.close()'s callback waits for every connection to end; listening stops at once.
        close: () => {
          server.close();
          return Promise.resolve();
        },
      });
    });
  });
}

/** Dials a backend, failing with an Error naming it after `timeoutMs`. */
export function connectTcp(address: HostPort, options: ConnectOptions): Promise<TcpConn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address.host, port: address.port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(
          `connect to ${address.host}:${address.port} timed out after ${options.timeoutMs}ms`,
        ),
      );
    }, options.timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      tune(socket, options.keepAliveMs);
      socket.pause();
      resolve(new NodeConn(socket));
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(
        new Error(`connect to ${address.host}:${address.port} failed: ${error.message}`, {
          cause: error,
        }),
      );
    });
  });
}

function pump(from: net.Socket, to: net.Socket, stats: SpliceStats, key: keyof SpliceStats): void {
  from.on("data", (chunk: Buffer) => {
    stats[key] += chunk.length;
    if (!to.write(chunk)) {
      from.pause();
      to.once("drain", () => from.resume());
    }
  });
  // Half-close: the peer's FIN is passed on; the other direction keeps flowing.
  from.on("end", () => to.end());
}

/**
 * Pipes two connections into each other until both directions are done or either side fails;
 * resolves when both are closed. Data is written as it arrives; a partial write pauses the
 * reader until the writer drains, so memory stays bounded with a slow reader.
 */
export function splice(client: TcpConn, server: TcpConn, stats: SpliceStats): Promise<void> {
  const a = (client as NodeConn).socket;
  const b = (server as NodeConn).socket;
  const kill = () => {
    a.destroy();
    b.destroy();
  };
  a.on("close", kill);
  b.on("close", kill);
  pump(a, b, stats, "up");
  pump(b, a, stats, "down");
  a.resume();
  b.resume();
  return Promise.all([client.closed, server.closed]).then(() => {});
}

export { serveHttp } from "./node_http.ts";
export { bindUdp } from "./udp_dgram.ts";

/** Node's fetch takes no CA per request: a CA file is refused here (NODE_EXTRA_CA_CERTS works). */
export function fetchTrusting(ca: string | null): Fetch {
  if (ca !== null) {
    throw new Error("--agent-ca-file needs Bun or Deno (under Node, set NODE_EXTRA_CA_CERTS)");
  }
  return (input, init) => fetch(input, init);
}
