/**
 * The few Linux socket calls the epoll data plane (src/dataplane/epoll_loop.ts) and the kernel
 * plane's pokes (src/dataplane/poke.ts) make through the runtime's
 * foreign-function interface (`bun:ffi`, `Deno.dlopen`): each adapter's `loadLibc()` binds them
 * to glibc and returns this interface, or null where that is not possible (another OS, no FFI,
 * no glibc). Buffers are passed as typed arrays; results are the C return values (-1 and
 * `errno()` on failure). Constants are Linux's, the same on x86_64 and aarch64.
 */

import { parseIp } from "../core/address.ts";

export type Buf = Uint8Array | Int32Array | Uint32Array;

export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buf, length: number): number;
  getsockopt(fd: number, level: number, name: number, value: Buf, length: Uint32Array): number;
  bind(fd: number, address: Uint8Array, length: number): number;
  listen(fd: number, backlog: number): number;
  accept4(fd: number, address: Uint8Array, length: Uint32Array, flags: number): number;
  connect(fd: number, address: Uint8Array, length: number): number;
  getsockname(fd: number, address: Uint8Array, length: Uint32Array): number;
  shutdown(fd: number, how: number): number;
  close(fd: number): number;
  recv(fd: number, buffer: Uint8Array, length: number, flags: number): number;
  send(fd: number, buffer: Uint8Array, length: number, flags: number): number;
  sendto(
    fd: number,
    buffer: Uint8Array,
    length: number,
    flags: number,
    address: Uint8Array,
    addressLength: number,
  ): number;
  read(fd: number, buffer: Buf, length: number): number;
  write(fd: number, buffer: Buf, length: number): number;
  eventfd(initial: number, flags: number): number;
  epoll_create1(flags: number): number;
  epoll_ctl(epfd: number, op: number, fd: number, event: Uint8Array): number;
  epoll_wait(epfd: number, events: Uint8Array, max: number, timeoutMs: number): number;
  /** The calling thread's id (its /proc/self/task entry). */
  gettid(): number;
  /** The calling thread's errno, read right after a call that returned -1. */
  errno(): number;
  /** Where `buffer`'s bytes are, for an argument that points at more memory (a BPF program). */
  address(buffer: Uint8Array): bigint;
}

/** The C declarations both adapters bind: name → [parameter kinds, result kind]. */
export const LIBC_SYMBOLS = {
  socket: [["i32", "i32", "i32"], "i32"],
  setsockopt: [["i32", "i32", "i32", "buf", "u32"], "i32"],
  getsockopt: [["i32", "i32", "i32", "buf", "buf"], "i32"],
  bind: [["i32", "buf", "u32"], "i32"],
  listen: [["i32", "i32"], "i32"],
  accept4: [["i32", "buf", "buf", "i32"], "i32"],
  connect: [["i32", "buf", "u32"], "i32"],
  getsockname: [["i32", "buf", "buf"], "i32"],
  shutdown: [["i32", "i32"], "i32"],
  close: [["i32"], "i32"],
  // ssize_t results fit in 32 bits here (at most one buffer, 64 KiB); the low half of the
  // register is the value on both ABIs.
  recv: [["i32", "buf", "usize", "i32"], "i32"],
  send: [["i32", "buf", "usize", "i32"], "i32"],
  sendto: [["i32", "buf", "usize", "i32", "buf", "u32"], "i32"],
  read: [["i32", "buf", "usize"], "i32"],
  write: [["i32", "buf", "usize"], "i32"],
  eventfd: [["u32", "i32"], "i32"],
  epoll_create1: [["i32"], "i32"],
  epoll_ctl: [["i32", "i32", "i32", "buf"], "i32"],
  epoll_wait: [["i32", "buf", "i32", "i32"], "i32"],
  gettid: [[], "i32"],
} as const;

export type LibcKind = "i32" | "u32" | "usize" | "buf";

export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0x800;
export const SOCK_CLOEXEC = 0x80000;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_ERROR = 4;
export const SO_KEEPALIVE = 9;
export const SO_REUSEPORT = 15;
export const SO_ATTACH_FILTER = 26;
export const SO_DETACH_FILTER = 27;
export const SO_MARK = 36;
export const IPPROTO_TCP = 6;
export const IPPROTO_RAW = 255;
export const TCP_NODELAY = 1;
export const TCP_KEEPIDLE = 4;
export const TCP_KEEPINTVL = 5;
export const MSG_NOSIGNAL = 0x4000;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;
export const EPOLLIN = 0x1;
export const EPOLLOUT = 0x4;
export const EPOLLERR = 0x8;
export const EPOLLHUP = 0x10;
export const EPOLLRDHUP = 0x2000;
export const EPOLLONESHOT = 0x40000000;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EAGAIN = 11;
export const EINTR = 4;
export const EINPROGRESS = 115;
export const ECONNABORTED = 103;

/** A non-blocking call that failed only for now (nothing to read, no room, a signal). */
export function isTransient(code: number): boolean {
  return code === EAGAIN || code === EINTR;
}

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  13: "EACCES",
  23: "ENFILE",
  24: "EMFILE",
  32: "EPIPE",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  101: "ENETUNREACH",
  103: "ECONNABORTED",
  104: "ECONNRESET",
  105: "ENOBUFS",
  110: "ETIMEDOUT",
  111: "ECONNREFUSED",
  113: "EHOSTUNREACH",
};

/** `ECONNREFUSED` for 111; `errno 42` for a number without a name here. */
export function errnoName(code: number): string {
  return ERRNO_NAMES[code] ?? `errno ${code}`;
}

/** Bytes per `struct epoll_event`: packed on x86_64, 8-byte aligned elsewhere. */
export function epollEventSize(arch: string): number {
  return arch === "x64" || arch === "x86_64" ? 12 : 16;
}

/** Offset of the 64-bit `data` field in `struct epoll_event`. */
export function epollDataOffset(arch: string): number {
  return epollEventSize(arch) - 8;
}

/** The sockaddr size that holds either family. */
export const SOCKADDR_SIZE = 28;

/** A `struct sockaddr_in` or `sockaddr_in6` for an address literal; null when it is none. */
export function sockaddr(ip: string, port: number): Uint8Array | null {
  const bytes = parseIp(ip);
  if (!bytes) return null;
  const out = new Uint8Array(bytes.length === 4 ? 16 : 28);
  const view = new DataView(out.buffer);
  view.setUint16(0, bytes.length === 4 ? AF_INET : AF_INET6, true);
  view.setUint16(2, port, false);
  out.set(bytes, bytes.length === 4 ? 4 : 8);
  return out;
}

/**
 * An address of family `AF_UNSPEC`: a TCP socket `connect`ed to it aborts its connection (the
 * peer gets a reset, unsent bytes are dropped) and keeps its descriptor, in one system call.
 */
export const UNSPEC_SOCKADDR: Uint8Array = new Uint8Array(16);

/** Reads a sockaddr back: the address as text (IPv6 compressed) and the port. */
export function readSockaddr(raw: Uint8Array): { address: string; port: number } {
  // Read byte by byte: this runs for every client accepted, thousands in a reconnect storm.
  const family = raw[0] | (raw[1] << 8);
  const port = (raw[2] << 8) | raw[3];
  if (family === AF_INET) return { address: `${raw[4]}.${raw[5]}.${raw[6]}.${raw[7]}`, port };
  if (family !== AF_INET6) return { address: "", port: 0 };
  return { address: formatIpv6(raw.subarray(8, 24)), port };
}

function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  // IPv4-mapped (::ffff:a.b.c.d), as the runtimes print a v4 client on a dual-stack socket.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${bytes.subarray(12).join(".")}`;
  }
  // The longest run of two or more zero groups becomes "::" (RFC 5952).
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      best = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLength).join(":")}`;
}

export const AF_UNIX = 1;
export const SOCK_DGRAM = 2;

/**
 * A `struct sockaddr_un` for `path` and its length; a leading "@" is Linux's abstract
 * namespace (a first byte of 0, as systemd's $NOTIFY_SOCKET may use). Null when too long.
 */
export function sockaddrUn(path: string): { address: Uint8Array; length: number } | null {
  const bytes = new TextEncoder().encode(path);
  if (bytes.length === 0 || bytes.length > 107) return null;
  const address = new Uint8Array(110);
  new DataView(address.buffer).setUint16(0, AF_UNIX, true);
  address.set(bytes, 2);
  const abstract = bytes[0] === 0x40; // "@"
  if (abstract) address[2] = 0;
  return { address, length: 2 + bytes.length + (abstract ? 0 : 1) };
}
