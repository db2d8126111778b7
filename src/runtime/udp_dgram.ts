import type { HostPort } from "../core/address.ts";
import type { UdpHandler, UdpSocket } from "./types.ts";

/**
 * Binds a UDP socket with node:dgram (both Bun and Deno implement it); every datagram goes to
 * `onMessage`. The receive buffer is raised to 1 MiB: Deno's 64 KiB default drops gossip
 * bursts (DESIGN.md §5). node:dgram is imported here, on first use: a proxy without peers
 * never loads it.
 */
export async function bindUdp(address: HostPort, onMessage: UdpHandler): Promise<UdpSocket> {
  const { default: dgram } = await import("node:dgram");
  const type = address.host.includes(":") ? "udp6" : "udp4";
  const socket = dgram.createSocket({ type, recvBufferSize: 1 << 20 });
  socket.on("message", (msg, rinfo) => {
    onMessage(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength), {
      host: rinfo.address,
      port: rinfo.port,
    });
  });
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(address.port, address.host, () => {
      socket.off("error", reject);
      socket.on("error", () => {});
      resolve({
        port: socket.address().port,
        send: (data, to, done) =>
          socket.send(data, to.port, to.host, (error) => done?.(error ?? null)),
        close: () => socket.close(),
      });
    });
  });
}
