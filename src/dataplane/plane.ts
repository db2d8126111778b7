/**
 * What the proxy asks of whatever carries the bytes: listen, and for each accepted client
 * connect it to a node. The proxy decides; a plane only carries out.
 */
import type { HostPort } from "../core/address.ts";
import type {
  ConnectOptions,
  ListenOptions,
  SpliceStats,
  TcpConn,
  TcpListener,
} from "../runtime/types.ts";

/** Who hears of a splice: its byte counts as data passes, and its end. */
export interface SpliceWatcher {
  readonly stats: SpliceStats;
  ended(): void;
}

/** An accepted client, and what the proxy does with it. */
export interface ClientConn extends TcpConn {
  /**
   * Dials `target` from wherever this client lives and splices the two the moment it connects,
   * `header` (a PROXY header) sent to the node first; resolves with the node side once bytes
   * pass. The watcher's stats grow as data passes, and it hears the end: an object, not a
   * promise or a closure, since ten thousand idle sessions each wait on one. Where the session
   * lives on another thread this is one exchange with it, which a reconnect storm of thousands
   * waits on.
   */
  connect(
    target: HostPort,
    options: ConnectOptions & { header?: Uint8Array },
    watcher: SpliceWatcher,
  ): Promise<TcpConn>;
  /**
   * A sever met this client while its node is dialled (`connect`): the dial fails with
   * "cancelled" before a byte passes, so the client can be routed again; if it is spliced
   * already, the whole session ends and the watcher hears so.
   */
  cancel(): void;
}

/**
 * `epoll`: threads that run Linux's epoll and recv/send through the runtime's FFI (epoll_loop.ts);
 * `sockets`: the runtime's own sockets on the main thread (local_plane.ts), for hosts where libc
 * cannot be loaded; `nft`: the kernel forwards remote clients' flows by NAT (nft_path.ts), the
 * epoll plane takes the rest; `auto`: epoll where it loads.
 */
export const DATA_PLANE_KINDS = ["auto", "epoll", "sockets", "nft"] as const;
export type DataPlaneKind = (typeof DATA_PLANE_KINDS)[number];

export interface DataPlane {
  /** Threads carrying sessions now; `--threads auto` adds some under load. */
  readonly threads: number;
  /** What carries the bytes, once listening: "epoll" or "sockets". */
  readonly kind: "epoll" | "sockets";
  listen(
    address: HostPort,
    options: ListenOptions,
    onConnection: (conn: ClientConn) => void,
  ): Promise<TcpListener>;
}

/** Growing the epoll threads under load (`--threads auto`, core/threads.ts). */
export interface ThreadGrowth {
  /** The most threads to grow to. */
  max: number;
  /** How often the threads' demand is read (DEMAND_WINDOW_MS unless a test asks otherwise). */
  windowMs?: number;
}
