/**
 * An in-memory stand-in for the socket calls the epoll loop makes (src/runtime/libc.ts), with
 * level-triggered readiness computed from the state of each socket, so tests can drive an
 * EpollLoop in-process and deterministically: a peer that reads slowly, a refused or silent
 * connect, a FIN at any moment, a full descriptor table.
 */
import * as C from "../../src/runtime/libc.ts";

const EPIPE = 32;
const EMFILE = 24;
const ECONNREFUSED = 111;
const EEXIST = 17;
const ENOENT = 2;
const EISCONN = 106;

/** One end of a connection: what it received, and whether its peer shut down or went away. */
export class End {
  chunks: Uint8Array[] = [];
  /** Bytes this end holds unread before the sender sees no room (a slow reader). */
  capacity = Infinity;
  /** The peer shut down its write side (or closed). */
  gotFin = false;
  /** This end shut down its write side. */
  sentFin = false;
  /** This end shut down both ways (SHUT_RDWR). */
  shutBoth = false;
  /** This end aborted its connection (a reset): bytes it had not sent are gone. */
  aborted = false;
  closed = false;
  peer: End | null = null;
  constructor(readonly port: number) {}

  get buffered(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0);
  }

  /** Room the peer may still send into this end. */
  get room(): number {
    return this.capacity - this.buffered;
  }
}

/** The test's side of a connection (a client, or a node the loop dialled). */
export class Outside {
  constructor(readonly side: End) {}

  write(text: string | Uint8Array): void {
    const data = typeof text === "string" ? new TextEncoder().encode(text) : text;
    this.side.peer!.chunks.push(data.slice());
  }

  /** Everything received so far, as text; taken out of the buffer. */
  take(): string {
    const text = new TextDecoder().decode(concat(this.side.chunks));
    this.side.chunks = [];
    return text;
  }

  /** Bytes received so far, taken out of the buffer. */
  takeBytes(): Uint8Array {
    const bytes = concat(this.side.chunks);
    this.side.chunks = [];
    return bytes;
  }

  /** Bytes written that the loop has not read yet (waiting in "the kernel"). */
  get unread(): number {
    return this.side.peer!.buffered;
  }

  /** FIN towards the loop. */
  end(): void {
    this.side.sentFin = true;
    this.side.peer!.gotFin = true;
  }

  close(): void {
    this.side.closed = true;
    this.side.peer!.gotFin = true;
  }

  /** The loop sent FIN or closed its side. */
  get ended(): boolean {
    return this.side.gotFin;
  }

  /** The loop closed its side (not only FIN). */
  get closedByLoop(): boolean {
    return this.side.peer!.closed;
  }

  /** The loop closed its side, shut it down both ways or aborted it: nothing passes any more. */
  get cutByLoop(): boolean {
    return this.side.peer!.closed || this.side.peer!.shutBoth || this.side.peer!.aborted;
  }

  /** The loop aborted the connection: this side got a reset. */
  get resetByLoop(): boolean {
    return this.side.peer!.aborted;
  }
}

type Entry =
  | { kind: "epoll"; interest: Map<number, { mask: number; data: Uint8Array; disabled: boolean }> }
  | { kind: "eventfd"; count: number }
  | { kind: "socket"; port: number }
  | { kind: "listen"; port: number; backlog: Outside[] }
  | { kind: "stream"; end: End; connecting: "pending" | "silent" | null; error: number };

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

export class FakeLibc implements C.Libc {
  readonly arch = "x64";
  #fds = new Map<number, Entry>();
  #nextFd = 10;
  #nextPort = 40000;
  #errno = 0;
  #listeners = new Map<number, Entry & { kind: "listen" }>();
  /** Ports that accept a dial: every connection the loop makes there is queued for the test. */
  readonly accepted = new Map<number, Outside[]>();
  /** Ports whose connect never completes. */
  readonly silent = new Set<number>();
  /** accept4 fails with EMFILE this many more times. */
  failAccepts = 0;
  /** epoll_ctl calls made, by operation (a session's cost in system calls). */
  readonly ctlCalls = { add: 0, mod: 0, del: 0 };

  /** Lets the loop dial `port`; the test finds each connection in `accepted`. */
  serve(port: number): Outside[] {
    const list: Outside[] = [];
    this.accepted.set(port, list);
    return list;
  }

  /** A client connects to the loop's listener on `port`. */
  clientTo(port: number): Outside {
    const listener = this.#listeners.get(port);
    if (!listener) throw new Error(`nothing listens on ${port}`);
    const [inside, outside] = this.#pair(port);
    listener.backlog.push(new Outside(inside));
    return new Outside(outside);
  }

  /** Descriptors open now (a leak shows here). */
  get open(): number {
    return this.#fds.size;
  }

  #pair(port: number): [End, End] {
    const a = new End(port);
    const b = new End(this.#nextPort++);
    a.peer = b;
    b.peer = a;
    return [a, b];
  }

  #fd(entry: Entry): number {
    const fd = this.#nextFd++;
    this.#fds.set(fd, entry);
    return fd;
  }

  #fail(code: number): number {
    this.#errno = code;
    return -1;
  }

  errno(): number {
    return this.#errno;
  }
  address(): bigint {
    return 0n;
  }
  gettid(): number {
    return 1;
  }
  epoll_create1(): number {
    return this.#fd({ kind: "epoll", interest: new Map() });
  }
  eventfd(): number {
    return this.#fd({ kind: "eventfd", count: 0 });
  }
  socket(): number {
    return this.#fd({ kind: "socket", port: 0 });
  }
  setsockopt(): number {
    return 0;
  }
  getsockopt(fd: number, _level: number, name: number, value: C.Buf): number {
    const entry = this.#fds.get(fd);
    if (name === C.SO_ERROR && entry?.kind === "stream") value[0] = entry.error;
    return 0;
  }
  bind(fd: number, address: Uint8Array): number {
    const entry = this.#fds.get(fd);
    if (entry?.kind !== "socket") return this.#fail(9);
    const { port } = C.readSockaddr(address);
    entry.port = port || this.#nextPort++;
    return 0;
  }
  listen(fd: number): number {
    const entry = this.#fds.get(fd);
    if (entry?.kind !== "socket") return this.#fail(9);
    const listener = { kind: "listen" as const, port: entry.port, backlog: [] };
    this.#fds.set(fd, listener);
    this.#listeners.set(entry.port, listener);
    return 0;
  }
  accept4(fd: number, address: Uint8Array): number {
    const entry = this.#fds.get(fd);
    if (entry?.kind !== "listen") return this.#fail(9);
    if (entry.backlog.length === 0) return this.#fail(C.EAGAIN);
    if (this.failAccepts > 0) {
      this.failAccepts--;
      return this.#fail(EMFILE);
    }
    const inside = entry.backlog.shift()!.side;
    address.set(C.sockaddr("127.0.0.1", inside.peer!.port)!);
    return this.#fd({ kind: "stream", end: inside, connecting: null, error: 0 });
  }
  connect(fd: number, address: Uint8Array): number {
    const existing = this.#fds.get(fd);
    if (existing?.kind === "stream") {
      // AF_UNSPEC on a connected socket: an abort, the peer sees the connection end at once.
      if (new DataView(address.buffer, address.byteOffset).getUint16(0, true) !== 0) {
        return this.#fail(EISCONN);
      }
      existing.end.aborted = true;
      existing.end.peer!.gotFin = true;
      return 0;
    }
    const { port } = C.readSockaddr(address);
    const [inside, outside] = this.#pair(port);
    const list = this.accepted.get(port);
    const stream: Entry = {
      kind: "stream",
      end: inside,
      connecting: this.silent.has(port) ? "silent" : "pending",
      error: list || this.silent.has(port) ? 0 : ECONNREFUSED,
    };
    this.#fds.set(fd, stream);
    if (list && stream.error === 0) list.push(new Outside(outside));
    return this.#fail(C.EINPROGRESS);
  }
  getsockname(fd: number, address: Uint8Array): number {
    const entry = this.#fds.get(fd);
    const port = entry?.kind === "listen" || entry?.kind === "socket"
      ? entry.port
      : entry?.kind === "stream"
      ? entry.end.port
      : 0;
    address.set(C.sockaddr("127.0.0.1", port)!);
    return 0;
  }
  shutdown(fd: number, how: number): number {
    const entry = this.#fds.get(fd);
    if (entry?.kind !== "stream") return this.#fail(9);
    if (how === C.SHUT_RDWR) entry.end.shutBoth = true;
    entry.end.sentFin = true;
    entry.end.peer!.gotFin = true;
    return 0;
  }
  close(fd: number): number {
    const entry = this.#fds.get(fd);
    if (!entry) return this.#fail(9);
    this.#fds.delete(fd);
    if (entry.kind === "stream") {
      entry.end.closed = true;
      entry.end.peer!.gotFin = true;
    }
    if (entry.kind === "listen") this.#listeners.delete(entry.port);
    for (const other of this.#fds.values()) {
      if (other.kind === "epoll") other.interest.delete(fd);
    }
    return 0;
  }
  recv(fd: number, buffer: Uint8Array, length: number): number {
    const entry = this.#fds.get(fd);
    if (entry?.kind !== "stream") return this.#fail(9);
    const end = entry.end;
    if (end.chunks.length === 0) return end.gotFin ? 0 : this.#fail(C.EAGAIN);
    let n = 0;
    while (end.chunks.length > 0 && n < length) {
      const chunk = end.chunks[0];
      const take = Math.min(chunk.length, length - n);
      buffer.set(chunk.subarray(0, take), n);
      n += take;
      if (take === chunk.length) end.chunks.shift();
      else end.chunks[0] = chunk.subarray(take);
    }
    return n;
  }
  send(fd: number, buffer: Uint8Array, length: number): number {
    const entry = this.#fds.get(fd);
    if (entry?.kind !== "stream") return this.#fail(9);
    const peer = entry.end.peer!;
    if (peer.closed) return this.#fail(EPIPE);
    const n = Math.min(length, Math.max(0, peer.room));
    if (n === 0) return this.#fail(C.EAGAIN);
    peer.chunks.push(buffer.slice(0, n));
    return n;
  }
  /** The epoll loop never sends datagrams or raw packets. */
  sendto(): number {
    return this.#fail(95); // EOPNOTSUPP
  }
  read(fd: number): number {
    const entry = this.#fds.get(fd);
    if (entry?.kind !== "eventfd") return this.#fail(9);
    if (entry.count === 0) return this.#fail(C.EAGAIN);
    entry.count = 0;
    return 8;
  }
  write(fd: number): number {
    const entry = this.#fds.get(fd);
    if (entry?.kind !== "eventfd") return this.#fail(9);
    entry.count++;
    return 8;
  }
  epoll_ctl(epfd: number, op: number, fd: number, event: Uint8Array): number {
    const ep = this.#fds.get(epfd);
    if (ep?.kind !== "epoll") return this.#fail(9);
    if (!this.#fds.has(fd)) return this.#fail(9);
    this.ctlCalls[op === C.EPOLL_CTL_ADD ? "add" : op === C.EPOLL_CTL_MOD ? "mod" : "del"]++;
    const view = new DataView(event.buffer, event.byteOffset);
    const data = event.slice(C.epollDataOffset(this.arch), C.epollDataOffset(this.arch) + 8);
    if (op === C.EPOLL_CTL_DEL) return ep.interest.delete(fd) ? 0 : this.#fail(ENOENT);
    if (op === C.EPOLL_CTL_ADD && ep.interest.has(fd)) return this.#fail(EEXIST);
    if (op === C.EPOLL_CTL_MOD && !ep.interest.has(fd)) return this.#fail(ENOENT);
    ep.interest.set(fd, { mask: view.getUint32(0, true), data, disabled: false });
    return 0;
  }
  /** Never blocks: reports what is ready now (the test advances the clock itself). */
  epoll_wait(epfd: number, events: Uint8Array, max: number): number {
    const ep = this.#fds.get(epfd);
    if (ep?.kind !== "epoll") return this.#fail(9);
    const size = C.epollEventSize(this.arch);
    const view = new DataView(events.buffer, events.byteOffset);
    let n = 0;
    for (const [fd, interest] of ep.interest) {
      const { mask, data } = interest;
      if (n >= max) break;
      if (interest.disabled) continue;
      const bits = this.#ready(this.#fds.get(fd)!) & (mask | C.EPOLLERR | C.EPOLLHUP);
      if (bits === 0) continue;
      // As the kernel: a one-shot interest reports once, then nothing until it is modified.
      if ((mask & C.EPOLLONESHOT) !== 0) interest.disabled = true;
      view.setUint32(n * size, bits, true);
      events.set(data, n * size + C.epollDataOffset(this.arch));
      n++;
    }
    return n;
  }

  #ready(entry: Entry): number {
    switch (entry.kind) {
      case "eventfd":
        return entry.count > 0 ? C.EPOLLIN : 0;
      case "listen":
        return entry.backlog.length > 0 ? C.EPOLLIN : 0;
      case "stream": {
        if (entry.connecting === "silent") return 0;
        if (entry.connecting === "pending") {
          entry.connecting = null;
          return entry.error ? C.EPOLLOUT | C.EPOLLERR : C.EPOLLOUT;
        }
        const end = entry.end;
        let bits = 0;
        if (end.chunks.length > 0 || end.gotFin) bits |= C.EPOLLIN;
        if (end.gotFin) bits |= C.EPOLLRDHUP;
        if (end.peer!.room > 0 && !end.peer!.closed) bits |= C.EPOLLOUT;
        if (end.gotFin && end.sentFin) bits |= C.EPOLLHUP;
        return bits;
      }
      default:
        return 0;
    }
  }
}
