/**
 * HTTP serving for the Bun and Node adapters: `Bun.serve` when present, else `node:http`,
 * which is imported only then (a builtin module that is loaded costs memory in every process,
 * docs/BENCHMARKS.md).
 */
import { formatHostPort, type HostPort } from "../core/address.ts";
import type { FetchHandler, HttpServer, TlsFiles } from "./types.ts";

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

/** Serves HTTP with a fetch-style handler; a port that cannot be bound rejects (never throws). */
export async function serveHttp(
  address: HostPort,
  handler: FetchHandler,
  tls?: TlsFiles,
): Promise<HttpServer> {
  const bun = (globalThis as { Bun?: BunServe }).Bun;
  if (bun) {
    const server = bun.serve({
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
  return await serveWithNodeHttp(address, handler, tls);
}

async function serveWithNodeHttp(
  address: HostPort,
  handler: FetchHandler,
  tls?: TlsFiles,
): Promise<HttpServer> {
  const { default: http } = await import("node:http");
  const https = tls ? (await import("node:https")).default : null;
  const listener = async (
    req: import("node:http").IncomingMessage,
    res: import("node:http").ServerResponse,
  ) => {
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
  };
  const server = tls && https
    ? https.createServer({ cert: tls.cert, key: tls.key }, listener)
    : http.createServer(listener);
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
