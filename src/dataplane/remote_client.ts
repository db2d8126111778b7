/**
 * A client accepted by an epoll thread, and the node side dialled for it: the session lives on
 * that thread; these forward what the proxy does with it as messages.
 */
import type { HostPort } from "../core/address.ts";
import type { ConnectOptions, TcpConn } from "../runtime/types.ts";
import type { ClientConn, SpliceWatcher } from "./plane.ts";
import { ipLiteral, resolveIp } from "./resolve_ip.ts";
import type { Thread } from "./thread.ts";

export class RemoteClient implements ClientConn {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Made when asked for (most sessions only have `#ended`): idle sessions are many. */
  #closed: Promise<void> | null = null;
  #markClosed: (() => void) | null = null;
  #watcher: SpliceWatcher | null = null;
  #isClosed = false;

  constructor(
    readonly thread: Thread,
    readonly id: number,
    address: { remoteAddress: string; remotePort: number; localAddress: string; localPort: number },
  ) {
    this.remoteAddress = address.remoteAddress;
    this.remotePort = address.remotePort;
    this.localAddress = address.localAddress;
    this.localPort = address.localPort;
  }

  get closed(): Promise<void> {
    if (this.#closed) return this.#closed;
    if (this.#isClosed) return (this.#closed = Promise.resolve());
    return (this.#closed = new Promise((resolve) => (this.#markClosed = resolve)));
  }

  setBytes(up: number, down: number): void {
    const stats = this.#watcher?.stats;
    if (!stats) return;
    stats.up = up;
    stats.down = down;
  }

  markClosed(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#markClosed?.();
    this.#watcher?.ended();
  }

  write(data: Uint8Array): Promise<void> {
    if (this.#isClosed) return Promise.reject(new Error("connection closed"));
    return this.thread.request((r) => ["write", r, this.id, "client", data]);
  }
  endWith(data: Uint8Array): void {
    if (!this.#isClosed) this.thread.post(["endWith", this.id, data]);
  }
  /** Set once a destroy was posted: it ends the whole flow, its node side too. */
  destroyed = false;
  destroy(): void {
    if (this.#isClosed || this.destroyed) return;
    this.destroyed = true;
    this.thread.post(["destroy", this.id, "client"]);
  }
  /** Dials `target` on the thread and splices the two once connected: one exchange. */
  async connect(
    target: HostPort,
    options: ConnectOptions & { header?: Uint8Array },
    watcher: SpliceWatcher,
  ): Promise<TcpConn> {
    if (this.#isClosed) throw new Error("client closed");
    this.#cancelled = false;
    // An address needs no lookup, and no turn of the event loop: a storm dials thousands.
    let host = ipLiteral(target.host);
    if (host === null) {
      try {
        host = await resolveIp(target.host);
      } catch (error) {
        const code = (error as { code?: string }).code ?? String(error);
        throw new Error(`connect to ${target.host}:${target.port} failed: ${code}`);
      }
      // Cancelled before the thread heard of this dial: it never starts.
      if (this.#cancelled) throw new Error("cancelled");
    }
    const { maxConnecting } = options;
    await this.thread.request((r) => [
      "dial",
      r,
      this.id,
      host,
      target.port,
      options.timeoutMs,
      options.keepAliveMs,
      maxConnecting ? Math.ceil(maxConnecting / this.thread.owner.threads) : 0,
      options.header,
    ]);
    this.#watch(watcher);
    return new RemoteServer(this);
  }
  /** `cancel` was called since the last dial began (it may not have reached the thread yet). */
  #cancelled = false;
  cancel(): void {
    if (this.#isClosed) return;
    this.#cancelled = true;
    this.thread.post(["cancel", this.id]);
  }

  /** Watches the session's bytes and end; false (the watcher told at once) when it ended. */
  #watch(watcher: SpliceWatcher): boolean {
    if (this.#isClosed) {
      queueMicrotask(() => watcher.ended());
      return false;
    }
    this.#watcher = watcher;
    return true;
  }
}

/** The node side of a remote session; it has no address of its own to show. */
class RemoteServer implements TcpConn {
  readonly remoteAddress = "";
  readonly remotePort = 0;
  readonly localAddress = "";
  readonly localPort = 0;
  constructor(readonly client: RemoteClient) {}
  get closed() {
    return this.client.closed;
  }
  write(data: Uint8Array): Promise<void> {
    const { thread, id } = this.client;
    return thread.request((r) => ["write", r, id, "server", data]);
  }
  endWith(data: Uint8Array): void {
    this.write(data).catch(() => {}).finally(() => this.destroy());
  }
  destroy(): void {
    // After the client's destroy there is no flow left to take the node side from.
    if (!this.client.destroyed) this.client.thread.post(["destroy", this.client.id, "server"]);
  }
}
