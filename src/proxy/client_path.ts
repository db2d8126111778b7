import { idleMark } from "../core/idle.ts";
import { ER_UNKNOWN_ERROR, mysqlErrorPacket } from "../core/mysql_packet.ts";
import type { BackendSpec } from "../core/backend_spec.ts";
import { proxyV2Header } from "../core/proxy_protocol.ts";
import type { ClientConn } from "../dataplane/plane.ts";
import type { TcpConn } from "../runtime/types.ts";
import type { BackendRuntime, ProxyCounters, ProxyOptions, Refusal } from "./proxy.ts";
import { dialRefusal } from "./dial_failure.ts";
import { Session } from "./session.ts";

/** What the client path needs of the proxy: where to route now, and the books to keep. */
export interface ClientRouting {
  readonly options: Pick<
    ProxyOptions,
    "connectTimeoutMs" | "keepAliveMs" | "maxConnecting" | "sendProxyV2"
  >;
  readonly backends: Map<string, BackendRuntime>;
  readonly counters: ProxyCounters;
  /** The node new sessions go to now; null to hold or refuse them. */
  readonly active: string | null;
  /** Why a new session cannot be routed now, or null when it can. */
  refusal(): Refusal | null;
  /** Resolves when new sessions may be routed (or refused): after a handover or a start. */
  waitForRoute(): Promise<void>;
  release(backend: BackendRuntime, session: Session): void;
  /** A session reached `node` after `connectMs` (histograms, a failover's end). */
  sessionStarted(node: string, connectMs: number): void;
}

/**
 * Dials `backend` for the client `conn` (and sends the PROXY header when configured); throws
 * an Error naming what failed.
 */
export async function dialBackend(
  options: ClientRouting["options"],
  conn: ClientConn,
  backend: BackendSpec,
): Promise<TcpConn> {
  const server = await conn.dial(backend, {
    timeoutMs: options.connectTimeoutMs,
    keepAliveMs: options.keepAliveMs,
    maxConnecting: options.maxConnecting,
  });
  if (options.sendProxyV2) {
    await server.write(proxyV2Header({
      sourceAddress: conn.remoteAddress,
      sourcePort: conn.remotePort,
      destinationAddress: conn.localAddress,
      destinationPort: conn.localPort,
    })).catch((error) => {
      server.destroy();
      throw new Error(`cannot send the PROXY header to ${backend.name}: ${error}`);
    });
  }
  return server;
}

/**
 * Pipes a dialled session until either side closes (writer and reader ports alike); its home
 * hears of the end (`endBooks`, then its release). Nothing waits on a frame or a closure
 * meanwhile: a session idle for hours holds only its own objects.
 */
export function carry(
  conn: ClientConn,
  session: Session,
  server: TcpConn,
  books: { accepted: number },
): void {
  session.server = server;
  session.idle = idleMark(performance.now());
  books.accepted++;
  conn.splice(server, session);
}

/** A carried session ended: its bytes go into the books. */
export function endBooks(books: { bytesUp: number; bytesDown: number }, session: Session): void {
  books.bytesUp += session.stats.up;
  books.bytesDown += session.stats.down;
}

/** Answers a refused client with a MySQL error packet naming why, and counts it. */
export function refuse(
  proxy: { counters: { refused: Record<string, number> } },
  conn: TcpConn,
  refusal: Refusal,
): void {
  const { reason, message, code = ER_UNKNOWN_ERROR } = refusal;
  proxy.counters.refused[reason] = (proxy.counters.refused[reason] ?? 0) + 1;
  conn.endWith(mysqlErrorPacket(code, "08004", `galerad: ${message}`));
}

/**
 * One client connection: wait while the agreement holds new sessions, dial the active node,
 * and splice the two until either side closes. A node that stops being active while we dial
 * never gets the client: it is routed again by the new state.
 */
export async function acceptClient(proxy: ClientRouting, conn: ClientConn): Promise<void> {
  await proxy.waitForRoute();
  for (let attempt = 0; attempt < 2; attempt++) {
    const refusal = proxy.refusal();
    if (refusal) return refuse(proxy, conn, refusal);
    const backend = proxy.backends.get(proxy.active!)!;
    const session = new Session(conn, backend.spec.name, backend.home);
    backend.sessions.add(session);
    let server: TcpConn;
    const dialStarted = performance.now();
    try {
      server = await dialBackend(proxy.options, conn, backend.spec);
    } catch (error) {
      proxy.release(backend, session);
      if (session.closed) continue; // the node was severed while we dialled: re-decide
      proxy.counters.connectFailures++;
      return refuse(proxy, conn, dialRefusal(backend.spec.name, "active", error));
    }
    if (session.closed || proxy.active !== backend.spec.name || proxy.refusal()) {
      server.destroy();
      proxy.release(backend, session);
      continue;
    }
    proxy.sessionStarted(backend.spec.name, performance.now() - dialStarted);
    carry(conn, session, server, proxy.counters);
    return;
  }
  refuse(proxy, conn, {
    reason: "active_changed",
    message: "active node changed while connecting; try again",
  });
}
