/**
 * Runtime adapter for Bun (and any Node-compatible runtime): `node:net` sockets for the TCP
 * hot path, `Bun.serve` for HTTP when present (node:http otherwise), `node:dgram` for UDP.
 */
import net from "node:net";
import http from "node:http";
import type { HostPort } from "../core/address.ts";
import type {
  ConnectOptions,
  FetchHandler,
  HttpServer,
  ListenOptions,
  SpliceStats,
  TcpConn,
  TcpListener,
} from "./types.ts";

/**
 * Node has no global Worker and only recent versions share a port between listeners: the data
 * plane stays on the main thread.
 */
export const dataThreadsSupported = false;

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

/** The part of Bun's API used here, typed locally so `deno check` needs no Bun types. */
interface BunServe {
  serve(options: {
    hostname: string;
    port: number;
    fetch: FetchHandler;
    idleTimeout: number;
    error: () => Response;
  }): { port?: number; stop(force: boolean): Promise<void> | void };
}

/** Serves HTTP with a fetch-style handler. */
export function serveHttp(address: HostPort, handler: FetchHandler): Promise<HttpServer> {
  const bun = (globalThis as { Bun?: BunServe }).Bun;
  if (bun) {
    const server = bun.serve({
      hostname: address.host,
      port: address.port,
      fetch: handler,
      idleTimeout: 30,
      error: () => new Response("internal error\n", { status: 500 }),
    });
    return Promise.resolve({
      port: server.port ?? address.port,
      close: async () => {
        await server.stop(true);
      },
    });
  }
  return serveWithNodeHttp(address, handler);
}

function serveWithNodeHttp(address: HostPort, handler: FetchHandler): Promise<HttpServer> {
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const method = req.method ?? "GET";
    const body = method === "GET" || method === "HEAD" ? undefined : Buffer.concat(chunks);
    const url = `http://${req.headers.host ?? "localhost"}${req.url ?? "/"}`;
    const headers = new Headers();
    for (const [key, value] of Object.entries(req.headers)) {
      if (typeof value === "string") headers.set(key, value);
    }
    let response: Response;
    try {
      response = await handler(new Request(url, { method, headers, body }));
    } catch {
      response = new Response("internal error\n", { status: 500 });
    }
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(address.port, address.host, () => {
      const bound = server.address();
      resolve({
        port: typeof bound === "object" && bound ? bound.port : address.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

export { bindUdp } from "./udp_dgram.ts";
