/**
 * HTTP serving with `node:http` (and `node:https` for TLS), for the Node adapter; imported
 * only when serving starts (a builtin module that is loaded costs memory in every process).
 */
import type { HostPort } from "../core/address.ts";
import type { FetchHandler, HttpServer, TlsFiles } from "./types.ts";

/** Serves HTTP with a fetch-style handler; a port that cannot be bound rejects (never throws). */
export async function serveHttp(
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
