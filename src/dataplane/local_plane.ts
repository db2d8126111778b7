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
  dial(target: HostPort, options: ConnectOptions): Promise<TcpConn> {
    return connectTcp(target, options);
  }
  splice(server: TcpConn, watcher: SpliceWatcher): void {
    splice(this.conn, server, watcher.stats).then(() => watcher.ended());
  }
}

export const localPlane: DataPlane = {
  threads: 1,
  kind: "sockets",
  listen: (address, options, onConnection) =>
    listenTcp(address, options, (conn) => onConnection(new LocalClient(conn))),
};
