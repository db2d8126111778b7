/**
 * The epoll loop sets TCP_NODELAY and keepalive on its listening socket only and relies on the
 * kernel copying them to every accepted socket; this checks that the kernel does.
 */
import { expect, test } from "bun:test";
import net from "node:net";
import { loadLibc } from "#thread";
import * as C from "../../src/runtime/libc.ts";

test("an accepted socket inherits the listener's TCP_NODELAY and keepalive settings", async () => {
  const libc = (await loadLibc())!;
  const value = new Int32Array(1);
  const set = (fd: number, level: number, name: number, v: number) => {
    value[0] = v;
    expect(libc.setsockopt(fd, level, name, value, 4)).toBe(0);
  };
  const get = (fd: number, level: number, name: number) => {
    expect(libc.getsockopt(fd, level, name, value, new Uint32Array([4]))).toBe(0);
    return value[0];
  };
  const listener = libc.socket(C.AF_INET, C.SOCK_STREAM | C.SOCK_CLOEXEC, 0);
  set(listener, C.IPPROTO_TCP, C.TCP_NODELAY, 1);
  set(listener, C.SOL_SOCKET, C.SO_KEEPALIVE, 1);
  set(listener, C.IPPROTO_TCP, C.TCP_KEEPIDLE, 17);
  set(listener, C.IPPROTO_TCP, C.TCP_KEEPINTVL, 13);
  const address = C.sockaddr("127.0.0.1", 0)!;
  expect(libc.bind(listener, address, address.length)).toBe(0);
  expect(libc.listen(listener, 8)).toBe(0);
  const bound = new Uint8Array(C.SOCKADDR_SIZE);
  libc.getsockname(listener, bound, new Uint32Array([C.SOCKADDR_SIZE]));
  const client = net.connect(C.readSockaddr(bound).port, "127.0.0.1");
  await new Promise((r) => client.once("connect", r));
  const fd = libc.accept4(
    listener,
    new Uint8Array(C.SOCKADDR_SIZE),
    new Uint32Array([C.SOCKADDR_SIZE]),
    C.SOCK_CLOEXEC,
  );
  try {
    expect(fd).toBeGreaterThan(0);
    expect(get(fd, C.IPPROTO_TCP, C.TCP_NODELAY)).toBe(1);
    expect(get(fd, C.SOL_SOCKET, C.SO_KEEPALIVE)).toBe(1);
    expect(get(fd, C.IPPROTO_TCP, C.TCP_KEEPIDLE)).toBe(17);
    expect(get(fd, C.IPPROTO_TCP, C.TCP_KEEPINTVL)).toBe(13);
  } finally {
    client.destroy();
    libc.close(fd);
    libc.close(listener);
  }
});
