/**
 * One epoll data-plane thread (a Worker started by data_plane.ts). It does what data_worker.ts
 * does, with the same messages, but runs its sockets itself: Linux's epoll and plain recv/send
 * through the runtime's foreign-function interface (libc.ts), in a loop that blocks in
 * `epoll_wait`. A packet costs one `recv` and one `send` into a reused 64 KiB buffer, and no
 * allocation, promise or event-loop turn; measured here, a third of the user CPU per query of
 * the runtime's own sockets and less than HAProxy's (docs/BENCHMARKS.md).
 *
 * The thread decides nothing. The main thread wakes it for a message by bumping a shared
 * counter and writing to an eventfd this thread watches; the loop then yields to the event loop
 * until it has received every message counted, and blocks again.
 */
import { loadLibc } from "#ffi";
import * as C from "./libc.ts";
import {
  COLLECT_AFTER_QUIET_MS,
  collectGarbage,
  RELEASE_AFTER_START_MS,
  releaseMemory,
} from "./release_memory.ts";
import type { FromWorker, ToWorker } from "./data_messages.ts";

const scope = globalThis as unknown as {
  postMessage(message: FromWorker): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
};
const post = (message: FromWorker) => scope.postMessage(message);

const ARCH = (globalThis as { Deno?: { build: { arch: string } } }).Deno?.build.arch ??
  (globalThis as unknown as { process: { arch: string } }).process.arch;
const EVENT_SIZE = C.epollEventSize(ARCH);
const DATA_OFFSET = C.epollDataOffset(ARCH);
const MAX_EVENTS = 256;
const BUFFER_SIZE = 64 * 1024;
/** An `endWith` client is closed this long after its last byte, if it has not closed first. */
const END_WITH_GRACE_MS = 2000;
/** After EMFILE/ENFILE, accepting pauses this long (the listen socket would stay readable). */
const ACCEPT_PAUSE_MS = 200;

let libc: C.Libc;
let ep = -1;
let wakeFd = -1;
let listenFd = -1;
let mailbox: Int32Array | null = null;
let received = 0;
let mailWaiter: { target: number; resolve: () => void } | null = null;
let quitting = false;
let keepAliveMs = 0;
let acceptPausedUntil = 0;
/** When to give back what loading the thread left (release_memory.ts); 0 once done. */
let releaseAt = 0;
/** When to collect what the last burst of new sessions left (release_memory.ts); 0: none. */
let collectAt = 0;

const events = new Uint8Array(EVENT_SIZE * MAX_EVENTS);
const eventsView = new DataView(events.buffer);
const ctlEvent = new Uint8Array(EVENT_SIZE);
const ctlView = new DataView(ctlEvent.buffer);
const buffer = new Uint8Array(BUFFER_SIZE);
const intOption = new Int32Array(1);
const addressBuffer = new Uint8Array(C.SOCKADDR_SIZE);
const addressLength = new Uint32Array(1);
const counter = new Uint8Array(8);

/** One socket of a session. */
class Sock {
  /** epoll interest registered now; -1 when the fd is not in the epoll set. */
  mask = -1;
  queue: Uint8Array[] = [];
  /** Requests (`write`) answered once the queue is empty. */
  flushWaiters: number[] = [];
  /** Our peer's FIN was read (recv returned 0). */
  readEnded = false;
  /** The client sent FIN before the splice (its bytes wait in the kernel until then). */
  finBeforeSplice = false;
  /** We sent FIN. */
  finSent = false;
  endAfterFlush = false;
  /** Not reading: the other socket has bytes queued. */
  paused = false;
  /** A non-blocking connect in progress. */
  connecting = false;
  constructor(
    readonly fd: number,
    readonly serial: number,
    readonly session: Session,
    readonly isClient: boolean,
  ) {}
  get peer(): Sock | null {
    return this.isClient ? this.session.server : this.session.client;
  }
}

interface Dial {
  request: number;
  target: string;
  deadline: number;
  timeoutMs: number;
}

class Session {
  server: Sock | null = null;
  client!: Sock;
  up = 0;
  down = 0;
  reportedUp = 0;
  reportedDown = 0;
  dirty = false;
  spliced = false;
  closed = false;
  dial: Dial | null = null;
  /** `endWith`: close at this time unless the client closes first. */
  closeAt = 0;
  constructor(readonly id: number) {}
}

const socks: (Sock | undefined)[] = [];
const sessions = new Map<number, Session>();
/** Sessions with a deadline (a dial or an endWith). */
const timed = new Set<Session>();
const dirty: Session[] = [];
let nextId = 1;
let nextSerial = 1;
let nextReport = 0;

function now(): number {
  return performance.now();
}

// ---- epoll interest ------------------------------------------------------------------------------

function wanted(s: Sock): number {
  if (s.connecting) return C.EPOLLOUT;
  let mask = s.queue.length > 0 ? C.EPOLLOUT : 0;
  if (s.session.spliced) {
    if (!s.readEnded && !s.paused) mask |= C.EPOLLIN | C.EPOLLRDHUP;
  } else if (s.isClient && !s.finBeforeSplice) {
    mask |= C.EPOLLRDHUP; // a client that leaves while its node is dialled
  }
  return mask;
}

function control(op: number, fd: number, mask: number, serial: number): number {
  ctlView.setUint32(0, mask, true);
  ctlView.setUint32(DATA_OFFSET, fd, true);
  ctlView.setUint32(DATA_OFFSET + 4, serial, true);
  return libc.epoll_ctl(ep, op, fd, ctlEvent);
}

/** Registers what `s` waits for now. */
function sync(s: Sock): void {
  const mask = wanted(s);
  if (mask === s.mask) return;
  if (s.mask < 0) {
    // Out of the set (after a hang-up it did not want): back in only when it wants something.
    if (mask === 0 && s.queue.length === 0) return;
    control(C.EPOLL_CTL_ADD, s.fd, mask, s.serial);
  } else {
    control(C.EPOLL_CTL_MOD, s.fd, mask, s.serial);
  }
  s.mask = mask;
}

// ---- sessions ------------------------------------------------------------------------------------

function newSock(fd: number, session: Session, isClient: boolean): Sock {
  const s = new Sock(fd, nextSerial++ >>> 0, session, isClient);
  socks[fd] = s;
  return s;
}

function closeSock(s: Sock | null): void {
  if (!s || socks[s.fd] !== s) return;
  socks[s.fd] = undefined;
  libc.close(s.fd);
  for (const request of s.flushWaiters) post(["failed", request, "connection closed"]);
  s.flushWaiters = [];
  s.queue = [];
}

/** Ends a session: both sockets closed, the main thread told with the final byte counts. */
function finish(session: Session): void {
  if (session.closed) return;
  session.closed = true;
  if (session.dial) post(["failed", session.dial.request, "client closed"]);
  session.dial = null;
  closeSock(session.client);
  closeSock(session.server);
  timed.delete(session);
  sessions.delete(session.id);
  post(["closed", session.id, session.up, session.down]);
}

function setOption(fd: number, level: number, name: number, value: number): void {
  intOption[0] = value;
  libc.setsockopt(fd, level, name, intOption, 4);
}

function tune(fd: number, keepAlive: number): void {
  setOption(fd, C.IPPROTO_TCP, C.TCP_NODELAY, 1);
  if (keepAlive > 0) {
    const seconds = Math.max(1, Math.round(keepAlive / 1000));
    setOption(fd, C.SOL_SOCKET, C.SO_KEEPALIVE, 1);
    setOption(fd, C.IPPROTO_TCP, C.TCP_KEEPIDLE, seconds);
    setOption(fd, C.IPPROTO_TCP, C.TCP_KEEPINTVL, seconds);
  }
}

function localAddress(fd: number): { address: string; port: number } {
  addressLength[0] = C.SOCKADDR_SIZE;
  addressBuffer.fill(0);
  libc.getsockname(fd, addressBuffer, addressLength);
  return C.readSockaddr(addressBuffer);
}

function acceptAll(): void {
  for (let i = 0; i < 64 && listenFd >= 0; i++) {
    addressLength[0] = C.SOCKADDR_SIZE;
    const fd = libc.accept4(
      listenFd,
      addressBuffer,
      addressLength,
      C.SOCK_NONBLOCK | C.SOCK_CLOEXEC,
    );
    if (fd < 0) {
      const code = libc.errno();
      if (C.isTransient(code) || code === C.ECONNABORTED) return;
      // Out of descriptors: the pending connection stays in the backlog; stop watching the
      // listen socket for a moment instead of spinning on it.
      control(C.EPOLL_CTL_DEL, listenFd, 0, 0);
      acceptPausedUntil = now() + ACCEPT_PAUSE_MS;
      post(["fault", `accept failed: ${C.errnoName(code)}; pausing ${ACCEPT_PAUSE_MS} ms`]);
      return;
    }
    const remote = C.readSockaddr(addressBuffer);
    const local = localAddress(fd);
    tune(fd, keepAliveMs);
    const session = new Session(nextId++);
    session.client = newSock(fd, session, true);
    sessions.set(session.id, session);
    collectAt = now() + COLLECT_AFTER_QUIET_MS;
    sync(session.client);
    post(["open", session.id, remote.address, remote.port, local.address, local.port]);
  }
}

/** Sends what it can of `data[0, length)` to `to`, queueing the rest; false when queued. */
function send(to: Sock, data: Uint8Array, length: number): boolean {
  if (to.queue.length > 0) {
    to.queue.push(data.slice(0, length));
    return false;
  }
  const n = libc.send(to.fd, data, length, C.MSG_NOSIGNAL);
  if (n === length) return true;
  if (n < 0 && !C.isTransient(libc.errno())) {
    finish(to.session);
    return false;
  }
  to.queue.push(data.slice(Math.max(0, n), length));
  sync(to);
  return false;
}

function readable(s: Sock): void {
  const session = s.session;
  const n = libc.recv(s.fd, buffer, BUFFER_SIZE, 0);
  if (n > 0) {
    if (s.isClient) session.up += n;
    else session.down += n;
    if (!session.dirty) {
      session.dirty = true;
      dirty.push(session);
    }
    const to = s.peer!;
    if (!send(to, buffer, n) && !session.closed) {
      s.paused = true; // resumed when `to` drains
      sync(s);
    }
    return;
  }
  if (n < 0) {
    if (!C.isTransient(libc.errno())) finish(session);
    return;
  }
  s.readEnded = true;
  sync(s);
  endWrite(s.peer!);
  settle(session);
}

/** Passes a FIN on once everything queued for `s` is sent. */
function endWrite(s: Sock): void {
  if (s.finSent) return;
  if (s.queue.length > 0) {
    s.endAfterFlush = true;
    return;
  }
  s.finSent = true;
  s.endAfterFlush = false;
  libc.shutdown(s.fd, C.SHUT_WR);
}

/** Closes a session whose two directions are both done. */
function settle(session: Session): void {
  const { client, server } = session;
  if (!server) return;
  if (client.readEnded && server.readEnded && client.finSent && server.finSent) finish(session);
}

function writable(s: Sock): void {
  while (s.queue.length > 0) {
    const chunk = s.queue[0];
    const n = libc.send(s.fd, chunk, chunk.length, C.MSG_NOSIGNAL);
    if (n < 0) {
      if (!C.isTransient(libc.errno())) finish(s.session);
      return;
    }
    if (n < chunk.length) {
      s.queue[0] = chunk.subarray(n);
      return;
    }
    s.queue.shift();
  }
  for (const request of s.flushWaiters) post(["done", request]);
  s.flushWaiters = [];
  if (s.endAfterFlush) endWrite(s);
  const peer = s.peer;
  if (peer && peer.paused) {
    peer.paused = false;
    sync(peer);
  }
  sync(s);
  if (s.session.closeAt > 0 && s.isClient) finish(s.session);
  else settle(s.session);
}

function connected(s: Sock): void {
  const session = s.session;
  const dial = session.dial!;
  intOption[0] = 0;
  addressLength[0] = 4;
  libc.getsockopt(s.fd, C.SOL_SOCKET, C.SO_ERROR, intOption, addressLength);
  const code = intOption[0];
  session.dial = null;
  if (session.closeAt === 0) timed.delete(session);
  if (code !== 0) {
    closeSock(s);
    session.server = null;
    post(["failed", dial.request, `connect to ${dial.target} failed: ${C.errnoName(code)}`]);
    return;
  }
  s.connecting = false;
  sync(s);
  post(["done", dial.request]);
}

function dispatch(fd: number, serial: number, bits: number): void {
  if (fd === wakeFd) {
    libc.read(wakeFd, counter, 8);
    return;
  }
  if (fd === listenFd) {
    acceptAll();
    return;
  }
  const s = socks[fd];
  if (!s || s.serial !== serial) return; // closed earlier in this batch
  const session = s.session;
  if (s.connecting) {
    connected(s);
    return;
  }
  const mask = s.mask;
  if ((bits & C.EPOLLERR) !== 0 && (mask & C.EPOLLIN) === 0) {
    finish(session); // reset while nobody reads it: nothing more can pass
    return;
  }
  if ((bits & C.EPOLLOUT) !== 0 && s.queue.length > 0) writable(s);
  if (session.closed || socks[fd] !== s) return;
  if ((mask & C.EPOLLIN) !== 0) {
    readable(s);
    return;
  }
  if (!session.spliced && s.isClient && (bits & (C.EPOLLRDHUP | C.EPOLLHUP)) !== 0) {
    // The client sent FIN while its node is dialled: its bytes stay in the kernel and are
    // read after the splice, then the FIN is passed on.
    s.finBeforeSplice = true;
    sync(s);
    if ((bits & C.EPOLLHUP) === 0) return;
  }
  if ((bits & C.EPOLLHUP) !== 0 && (s.mask & (C.EPOLLIN | C.EPOLLOUT)) === 0) {
    // Hung up while it is not read (before the splice, or paused): leave the set until it is;
    // level-triggered, it would be reported on every turn.
    control(C.EPOLL_CTL_DEL, s.fd, 0, 0);
    s.mask = -1;
  }
}

// ---- messages from the main thread ----------------------------------------------------------------

function answerListen(host: string, port: number): void {
  const address = C.sockaddr(host, port);
  if (!address) {
    post(["listenFailed", `listen ${host}:${port}: not an IP address`, "EINVAL"]);
    return;
  }
  const family = address.length === 16 ? C.AF_INET : C.AF_INET6;
  const fd = libc.socket(family, C.SOCK_STREAM | C.SOCK_NONBLOCK | C.SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const code = C.errnoName(libc.errno());
    post(["listenFailed", `listen ${host}:${port}: ${code}`, code]);
    return;
  }
  setOption(fd, C.SOL_SOCKET, C.SO_REUSEADDR, 1);
  setOption(fd, C.SOL_SOCKET, C.SO_REUSEPORT, 1);
  if (libc.bind(fd, address, address.length) < 0 || libc.listen(fd, 511) < 0) {
    const code = C.errnoName(libc.errno());
    libc.close(fd);
    post(["listenFailed", `listen ${host}:${port}: ${code}`, code]);
    return;
  }
  listenFd = fd;
  control(C.EPOLL_CTL_ADD, listenFd, C.EPOLLIN, 0);
  post(["listening", localAddress(fd).port, wakeFd, libc.gettid()]);
  releaseAt = now() + RELEASE_AFTER_START_MS;
  setTimeout(() => {
    run().catch((error) => {
      // The thread is done for: close its sockets, then fail so the plane replaces it.
      post(["fault", error instanceof Error ? error.message : String(error)]);
      shutdownAll();
      throw error;
    });
  }, 0);
}

function dialTo(request: number, session: Session, host: string, port: number, options: {
  timeoutMs: number;
  keepAliveMs: number;
}): void {
  const target = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  const address = C.sockaddr(host, port);
  if (!address) return post(["failed", request, `connect to ${target} failed: not an IP address`]);
  const family = address.length === 16 ? C.AF_INET : C.AF_INET6;
  const fd = libc.socket(family, C.SOCK_STREAM | C.SOCK_NONBLOCK | C.SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return post(["failed", request, `connect to ${target} failed: ${C.errnoName(libc.errno())}`]);
  }
  tune(fd, options.keepAliveMs);
  const s = newSock(fd, session, false);
  session.server = s;
  if (libc.connect(fd, address, address.length) === 0) {
    sync(s);
    post(["done", request]);
    return;
  }
  const code = libc.errno();
  if (code !== C.EINPROGRESS && code !== C.EINTR) {
    closeSock(s);
    session.server = null;
    return post(["failed", request, `connect to ${target} failed: ${C.errnoName(code)}`]);
  }
  s.connecting = true;
  session.dial = {
    request,
    target,
    deadline: now() + options.timeoutMs,
    timeoutMs: options.timeoutMs,
  };
  timed.add(session);
  sync(s);
}

function handle(message: ToWorker): void {
  switch (message[0]) {
    case "listen": {
      const [, host, port, keepAlive, shared] = message;
      keepAliveMs = keepAlive;
      mailbox = shared ? new Int32Array(shared) : null;
      answerListen(host, port);
      return;
    }
    case "stop":
      if (listenFd >= 0) {
        libc.close(listenFd);
        listenFd = -1;
      }
      post(["stopped"]);
      return;
    case "quit":
      quitting = true;
      return;
    case "dial": {
      const [, request, id, host, port, timeoutMs, keepAlive] = message;
      const session = sessions.get(id);
      if (!session) return post(["failed", request, "client closed"]);
      closeSock(session.server);
      dialTo(request, session, host, port, { timeoutMs, keepAliveMs: keepAlive });
      return;
    }
    case "write": {
      const [, request, id, side, data] = message;
      const session = sessions.get(id);
      const s = side === "client" ? session?.client : session?.server;
      if (!s || s.finSent) return post(["failed", request, "connection closed"]);
      if (send(s, data, data.length)) post(["done", request]);
      else if (session!.closed) post(["failed", request, "connection closed"]);
      else s.flushWaiters.push(request);
      return;
    }
    case "endWith": {
      const [, id, data] = message;
      const session = sessions.get(id);
      if (!session || session.client.finSent) return;
      // Sent whole (the usual case: one small packet), the client is closed at once; the
      // kernel still delivers the bytes and the FIN. Otherwise once the rest is flushed, or
      // after a grace period for a client that does not read.
      if (send(session.client, data, data.length)) return finish(session);
      if (session.closed) return;
      endWrite(session.client);
      session.closeAt = now() + END_WITH_GRACE_MS;
      timed.add(session);
      return;
    }
    case "destroy": {
      const [, id, side] = message;
      const session = sessions.get(id);
      if (!session) return;
      if (side === "client") return finish(session);
      closeSock(session.server);
      session.server = null;
      return;
    }
    case "destroyMany": {
      for (const [id, side] of message[1]) handle(["destroy", id, side]);
      return;
    }
    case "splice": {
      const [, id] = message;
      const session = sessions.get(id);
      if (!session) return;
      if (!session.server || session.server.connecting) return finish(session);
      session.spliced = true;
      // Bytes (and a FIN) the client sent while its node was dialled are read now.
      sync(session.client);
      sync(session.server);
      return;
    }
  }
}

/** Messages that came while libc was loading. */
let early: ToWorker[] | null = [];

scope.onmessage = (event) => {
  if (early) {
    early.push(event.data);
    return;
  }
  receive(event.data);
};

function receive(message: ToWorker): void {
  received++;
  try {
    handle(message);
  } catch (error) {
    post(["fault", error instanceof Error ? error.message : String(error)]);
  }
  if (mailWaiter && received >= mailWaiter.target) {
    const { resolve } = mailWaiter;
    mailWaiter = null;
    resolve();
  }
}

// ---- the loop -------------------------------------------------------------------------------------

/** Nothing timed: no deadline, byte report, accept pause or memory release pending. */
function idle(): boolean {
  return timed.size === 0 && dirty.length === 0 && acceptPausedUntil === 0 && releaseAt === 0 &&
    collectAt === 0;
}

/** Milliseconds epoll_wait may block: until the next deadline or byte report; -1 for none. */
function timeout(): number {
  if (idle()) return -1;
  const t = now();
  let next = Infinity;
  if (dirty.length > 0) next = nextReport;
  if (acceptPausedUntil > 0) next = Math.min(next, acceptPausedUntil);
  if (releaseAt > 0) next = Math.min(next, releaseAt);
  if (collectAt > 0) next = Math.min(next, collectAt);
  for (const session of timed) {
    if (session.dial) next = Math.min(next, session.dial.deadline);
    if (session.closeAt > 0) next = Math.min(next, session.closeAt);
  }
  return Math.max(0, Math.ceil(next - t));
}

function timers(): void {
  if (idle()) return;
  const t = now();
  if (releaseAt > 0 && t >= releaseAt) {
    releaseAt = 0;
    releaseMemory();
  }
  if (collectAt > 0 && t >= collectAt) {
    collectAt = 0;
    collectGarbage();
  }
  if (acceptPausedUntil > 0 && t >= acceptPausedUntil) {
    acceptPausedUntil = 0;
    if (listenFd >= 0) control(C.EPOLL_CTL_ADD, listenFd, C.EPOLLIN, 0);
  }
  for (const session of timed) {
    const dial = session.dial;
    if (dial && t >= dial.deadline) {
      session.dial = null;
      closeSock(session.server);
      session.server = null;
      post([
        "failed",
        dial.request,
        `connect to ${dial.target} timed out after ${dial.timeoutMs}ms`,
      ]);
    }
    if (session.closeAt > 0 && t >= session.closeAt) finish(session);
    else if (!session.dial && session.closeAt === 0) timed.delete(session);
  }
  if (dirty.length > 0 && t >= nextReport) report(t);
}

function report(t: number): void {
  const changed: number[] = [];
  for (const session of dirty) {
    session.dirty = false;
    if (session.closed) continue;
    if (session.up === session.reportedUp && session.down === session.reportedDown) continue;
    session.reportedUp = session.up;
    session.reportedDown = session.down;
    changed.push(session.id, session.up, session.down);
  }
  dirty.length = 0;
  nextReport = t + 1000;
  if (changed.length > 0) post(["bytes", changed]);
}

/** Waits (in the event loop) until every message the main thread counted has arrived. */
function mail(): Promise<void> | null {
  const target = mailbox ? Atomics.load(mailbox, 0) : received;
  if (received >= target) return null;
  return new Promise((resolve) => (mailWaiter = { target, resolve }));
}

async function run(): Promise<void> {
  nextReport = now() + 1000;
  while (!quitting) {
    const n = libc.epoll_wait(ep, events, MAX_EVENTS, timeout());
    if (n < 0) {
      const code = libc.errno();
      if (code === C.EINTR) continue;
      throw new Error(`epoll_wait failed: ${C.errnoName(code)}`);
    }
    let woken = false;
    for (let i = 0; i < n; i++) {
      const at = i * EVENT_SIZE;
      const fd = eventsView.getUint32(at + DATA_OFFSET, true);
      if (fd === wakeFd) woken = true;
      dispatch(
        fd,
        eventsView.getUint32(at + DATA_OFFSET + 4, true),
        eventsView.getUint32(at, true),
      );
    }
    timers();
    if (woken) {
      const pending = mail();
      if (pending) await pending;
    }
  }
  shutdownAll();
  // Only after "quit": the main thread writes to the eventfd no more.
  libc.close(wakeFd);
  libc.close(ep);
}

/** Closes every socket this thread holds (quit, or a fault in the loop). */
function shutdownAll(): void {
  for (const session of [...sessions.values()]) finish(session);
  if (listenFd >= 0) libc.close(listenFd);
  listenFd = -1;
}

// ---- start --------------------------------------------------------------------------------------

loadLibc().then((loaded) => {
  if (!loaded) throw new Error("epoll data plane: cannot load libc");
  libc = loaded;
  ep = libc.epoll_create1(C.SOCK_CLOEXEC);
  wakeFd = libc.eventfd(0, C.SOCK_NONBLOCK | C.SOCK_CLOEXEC);
  if (ep < 0 || wakeFd < 0) throw new Error(`epoll data plane: ${C.errnoName(libc.errno())}`);
  control(C.EPOLL_CTL_ADD, wakeFd, C.EPOLLIN, 0);
  const queued = early!;
  early = null;
  for (const message of queued) receive(message);
});
