import type { IdleMark } from "../core/idle.ts";
import type { ClientConn } from "../dataplane/plane.ts";
import type { SpliceStats, TcpConn } from "../runtime/types.ts";

/** Where a session is kept, told once it ended (one per node, not one per session). */
export interface SessionHome {
  ended(session: Session): void;
}

/** One client connection and, once dialled, its backend connection. */
export class Session {
  readonly stats: SpliceStats = { up: 0, down: 0 };
  server: TcpConn | null = null;
  closed = false;
  /**
   * Its node is being dialled by a `connect` that splices by itself: until that settles, bytes
   * may pass at any moment, so a sever has to cancel it and wait.
   */
  dialling = false;
  /** Set when spliced: what the idle check last saw (core/idle.ts). */
  idle: IdleMark | null = null;

  constructor(
    readonly client: ClientConn,
    readonly backend: string,
    readonly home: SessionHome,
  ) {}

  /** The data plane says both sides are closed. */
  ended(): void {
    this.closed = true;
    this.home.ended(this);
  }

  /**
   * Severs both sides at once. A session still dialling its backend is cancelled: unless its
   * bytes pass already, the proxy then routes its client by the new state instead of dropping it.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.server !== null) {
      this.client.destroy();
      this.server.destroy();
    } else if (this.dialling) this.client.cancel();
  }

  /** Its `connect` resolved: bytes pass; one severed meanwhile is ended now. */
  connected(server: TcpConn): void {
    this.dialling = false;
    this.server = server;
    if (!this.closed) return;
    this.client.destroy();
    server.destroy();
  }
}
