import { idleMark } from "../core/idle.ts";
import { ER_UNKNOWN_ERROR, mysqlErrorPacket } from "../core/mysql_packet.ts";
import type { BackendSpec } from "../core/backend_spec.ts";
import { proxyV2Header } from "../core/proxy_protocol.ts";
import type { ClientConn } from "../dataplane/plane.ts";
import type { TcpConn } from "../runtime/types.ts";
import type { BackendRuntime, ProxyCounters, ProxyOptions } from "./proxy.ts";
import type { Refusal, RefusalReason } from "./refusal.ts";
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
 * Dials `backend` for the client `conn` and splices the two the moment it connects, the PROXY
 * header first when configured: one exchange with the data plane, which a reconnect storm of
 * thousands waits on. `session` is on its node's books already; a sever meanwhile cancels the
 * dial. Throws an Error naming what failed ("cancelled" after such a sever).
 */
export async function connectBackend(
  options: ClientRouting["options"],
  conn: ClientConn,
  backend: BackendSpec,
  session: Session,
): Promise<void> {
  const header = options.sendProxyV2
    ? proxyV2Header({
      sourceAddress: conn.remoteAddress,
      sourcePort: conn.remotePort,
      destinationAddress: conn.localAddress,
      destinationPort: conn.localPort,
    })
    : undefined;
  session.dialling = true;
  try {
    const server = await conn.connect(backend, {
      timeoutMs: options.connectTimeoutMs,
      keepAliveMs: options.keepAliveMs,
      maxConnecting: options.maxConnecting,
      header,
    }, session);
    session.connected(server);
  } finally {
    session.dialling = false;
  }
}

/**
 * A connected session is carried until either side closes (writer and reader ports alike); its
 * home hears of the end (`endBooks`, then its release). Nothing waits on a frame or a closure
 * meanwhile: a session idle for hours holds only its own objects.
 */
export function carry(session: Session, books: { accepted: number }): void {
  session.idle = idleMark(performance.now());
  books.accepted++;
}

/** A carried session ended: its bytes go into the books. */
export function endBooks(books: { bytesUp: number; bytesDown: number }, session: Session): void {
  books.bytesUp += session.stats.up;
  books.bytesDown += session.stats.down;
}

/** Answers a refused client with a MySQL error packet naming why, and counts it. */
export function refuse(
  proxy: { counters: { refused: Partial<Record<RefusalReason, number>> } },
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
    const name = backend.spec.name;
    const session = new Session(conn, name, backend.home);
    backend.sessions.add(session);
    const dialStarted = performance.now();
    try {
      await connectBackend(proxy.options, conn, backend.spec, session);
    } catch (error) {
      proxy.release(backend, session);
      if (session.closed) continue; // severed before a byte passed: re-decide
      proxy.counters.connectFailures++;
      return refuse(proxy, conn, dialRefusal(name, "active", error));
    }
    // Severed as it connected: ended as any severed session (its node may have spoken already).
    if (session.closed) return;
    // What changes the route severs the old node's sessions; a drain or a disable may not.
    if (proxy.active !== name || proxy.refusal()) return session.close();
    proxy.sessionStarted(name, performance.now() - dialStarted);
    carry(session, proxy.counters);
    return;
  }
  refuse(proxy, conn, {
    reason: "active_changed",
    message: "active node changed while connecting; try again",
  });
}
