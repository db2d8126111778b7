/**
 * The runtime's own sockets on the main thread: the plane where libc cannot be loaded (not
 * Linux with glibc, or a runtime without FFI). One thread; the runtime's splice moves the bytes.
 */
import { connectTcp, listenTcp, splice } from "#runtime";
import type { HostPort } from "../core/address.ts";
import type { ConnectOptions, TcpConn } from "../runtime/types.ts";
import type { ClientConn, DataPlane, SpliceWatcher } from "./plane.ts";

class LocalClient implements ClientConn {
  constructor(readonly conn: TcpConn) {}
  get remoteAddress() {
    return this.conn.remoteAddress;
  }
  get remotePort() {
    return this.conn.remotePort;
  }
  get localAddress() {
    return this.conn.localAddress;
  }
  get localPort() {
    return this.conn.localPort;
  }
  get closed() {
    return this.conn.closed;
  }
  write(data: Uint8Array): Promise<void> {
    return this.conn.write(data);
  }
  endWith(data: Uint8Array): void {
    this.conn.endWith(data);
  }
  destroy(): void {
    this.conn.destroy();
  }
  /** The node side once spliced. */
  #server: TcpConn | null = null;
  /** Set while `connect` dials or writes the header: fails it with "cancelled". */
  #cancel: (() => void) | null = null;
  async connect(
    target: HostPort,
    options: ConnectOptions & { header?: Uint8Array },
    watcher: SpliceWatcher,
  ): Promise<TcpConn> {
    const cancelled = new Promise<never>((_, reject) => {
      this.#cancel = () => reject(new Error("cancelled"));
    });
    const dialling = connectTcp(target, options);
    let server: TcpConn | null = null;
    try {
      server = await Promise.race([dialling, cancelled]);
      if (options.header) {
        const written = server.write(options.header).catch((error) => {
          throw new Error(`cannot write to ${target.host}:${target.port}: ${error}`);
        });
        await Promise.race([written, cancelled]);
      }
    } catch (error) {
      // Dropped before a byte of the client's passed, however late its connect completes.
      (server ? Promise.resolve(server) : dialling).then((late) => late.destroy(), () => {});
      throw error;
    } finally {
      this.#cancel = null;
    }
    this.#server = server;
    splice(this.conn, server, watcher.stats).then(() => watcher.ended());
    return server;
  }
  cancel(): void {
    if (this.#cancel) return this.#cancel();
    if (!this.#server) return;
    this.conn.destroy();
    this.#server.destroy();
  }
}

export const localPlane: DataPlane = {
  threads: 1,
  kind: "sockets",
  listen: (address, options, onConnection) =>
    listenTcp(address, options, (conn) => onConnection(new LocalClient(conn))),
};
