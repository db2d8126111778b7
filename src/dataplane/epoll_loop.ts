/**
 * The epoll data plane's event loop: Linux's epoll and plain recv/send through a `Libc`, for
 * the sessions of one thread. A packet costs one `recv` and one `send` into a reused 64 KiB
 * buffer, and no allocation, promise or event-loop turn (docs/BENCHMARKS.md has the cost per
 * query). It decides nothing: it answers the main thread's messages (messages.ts) and reports
 * what happened through `post`.
 *
 * It takes its libc, its clock and its memory hooks as arguments, so a test can drive it
 * in-process over a fake libc (tests/dataplane/epoll_loop_test.ts); epoll_thread.ts runs it on
 * a worker with the real one.
 */
import * as C from "../runtime/libc.ts";
import type { FromWorker, ToWorker } from "./messages.ts";
import { COLLECT_AFTER_QUIET_MS, RELEASE_AFTER_START_MS } from "./memory.ts";
import { gated } from "./sever_gate.ts";
import { Deadlines } from "./deadlines.ts";

const MAX_EVENTS = 256;
const BUFFER_SIZE = 64 * 1024;
/** An `endWith` client is closed this long after its last byte, if it has not closed first. */
const END_WITH_GRACE_MS = 2000;
/** After EMFILE/ENFILE, accepting pauses this long (the listen socket would stay readable). */
const ACCEPT_PAUSE_MS = 200;
/** A sever reports the sessions it ended in parts of this many (see `#sever`). */
const SEVER_REPORT_EVERY = 1024;
/** Byte counts of sessions that moved data are reported this often. */
const REPORT_EVERY_MS = 1000;
/**
 * The listen backlog of each thread's listener: connections the kernel holds while the loop
 * accepts. Deep enough for a pool of thousands reconnecting at once after a failover (a SYN
 * dropped for a full queue costs its client a one-second retransmit); the kernel caps it at
 * net.core.somaxconn.
 */
const LISTEN_BACKLOG = 4096;

export interface LoopOptions {
  /** The CPU architecture: the layout of `struct epoll_event` depends on it. */
  arch: string;
  /** Milliseconds on a monotonic clock. */
  now?: () => number;
  /** Gives back what loading the thread left (memory.ts); once, after the listener is up. */
  releaseMemory?: () => void;
  /** Collects what a burst of new sessions left; once per burst. */
  collectGarbage?: () => void;
  /** A large sever's node sides are cut; returns when its clients may be closed (sever_gate.ts). */
  severed?: () => void;
}

/** Shared empty queues: most sockets never queue, and ten thousand idle ones need no arrays. */
const NO_CHUNKS = Object.freeze([]) as unknown as Uint8Array[];
const NO_REQUESTS = Object.freeze([]) as unknown as number[];

/** One socket of a flow. */
class Sock {
  /** epoll interest registered now; -1 when the fd is not in the epoll set. */
  mask = -1;
  queue = NO_CHUNKS;
  /** Requests (`write`) answered once the queue is empty. */
  flushWaiters = NO_REQUESTS;
  /** Our peer's FIN was read (recv returned 0). */
  readEnded = false;
  /** The client sent FIN before the splice (its bytes wait in the kernel until then). */
  finBeforeSplice = false;
  /** The client sent bytes before the splice: they wait in the kernel, unwatched, until then. */
  early = false;
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
    readonly flow: Flow,
    readonly isClient: boolean,
  ) {}
  get peer(): Sock | null {
    return this.isClient ? this.flow.server : this.flow.client;
  }
}

interface Dial {
  request: number;
  target: string;
  keepAliveMs: number;
  deadline: number;
  timeoutMs: number;
  node: NodeDials;
  /** The socket exists and connects; false while the dial waits for a slot of its node. */
  started: boolean;
  /** Sent to the node first once connected, before the splice (see messages.ts). */
  header: Uint8Array | null;
}

/**
 * The connects to one node that its server has not answered yet (a MySQL server speaks first:
 * until its greeting, the connection may still sit in its accept queue). Bounding them keeps a
 * reconnect storm inside the node's listen backlog (MariaDB's back_log): a SYN the node drops
 * for a full queue costs its client a one-second retransmit, a wait here costs a few
 * milliseconds.
 */
class NodeDials {
  /** The node's socket address, made once (null: not an IP address). */
  readonly address: Uint8Array | null;
  unanswered = 0;
  /** Dials waiting for a slot, oldest first, from `head` on. */
  waiting: Flow[] = [];
  head = 0;
  /** This thread's share of the proxy's limit; 0: none. */
  limit = 0;

  constructor(host: string, port: number) {
    this.address = C.sockaddr(host, port);
  }

  get full(): boolean {
    return this.limit > 0 && this.unanswered >= this.limit;
  }

  next(): Flow | undefined {
    const flow = this.waiting[this.head];
    if (flow === undefined) return undefined;
    this.head++;
    if (this.head >= 1024 && this.head * 2 >= this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
    return flow;
  }
}

/** A client and the node dialled for it, as this thread carries them (a session, to the proxy). */
class Flow {
  server: Sock | null = null;
  client!: Sock;
  up = 0;
  down = 0;
  reportedUp = 0;
  reportedDown = 0;
  dirty = false;
  spliced = false;
  closed = false;
  /** Its end was already reported to the main thread (a sever reports before the client closes). */
  reported = false;
  dial: Dial | null = null;
  /** The node whose answer (its first byte) this flow's connect holds a slot for. */
  slot: NodeDials | null = null;
  /** `endWith`: close at this time unless the client closes first. */
  closeAt = 0;
  constructor(readonly id: number) {}
}

export class EpollLoop {
  readonly #libc: C.Libc;
  readonly #post: (message: FromWorker) => void;
  readonly #now: () => number;
  readonly #release: () => void;
  readonly #collect: () => void;
  readonly #severed: () => void;
  readonly #eventSize: number;
  readonly #dataOffset: number;
  readonly #ep: number;
  /** The eventfd the main thread writes to after each message. */
  readonly wakeFd: number;
  #listenFd = -1;
  #keepAliveMs = 0;
  /** The listener's own address when bound to one (not a wildcard): every client's local end. */
  #boundLocal: { address: string; port: number } | null = null;
  #acceptPausedUntil = 0;
  /** When to give back what loading the thread left; 0 once done. */
  #releaseAt = 0;
  /** When to collect what the last burst of new sessions left; 0: none. */
  #collectAt = 0;
  #quitting = false;
  /** `#answered` is handing out slots (see there). */
  #admitting = false;
  #nextReport = 0;
  #nextId = 1;
  #nextSerial = 1;

  readonly #events: Uint8Array;
  readonly #eventsView: DataView;
  readonly #ctlEvent: Uint8Array;
  readonly #ctlView: DataView;
  readonly #buffer = new Uint8Array(BUFFER_SIZE);
  readonly #intOption = new Int32Array(1);
  readonly #addressBuffer = new Uint8Array(C.SOCKADDR_SIZE);
  readonly #addressLength = new Uint32Array(1);
  readonly #counter = new Uint8Array(8);

  readonly #socks: (Sock | undefined)[] = [];
  readonly #flows = new Map<number, Flow>();
  /** Unanswered connects per node (`host:port`). */
  readonly #nodes = new Map<string, NodeDials>();
  /**
   * Flows with a deadline, a dial's or an endWith's close, by id: an entry outlives its flow
   * until its time, and holds nothing of it meanwhile.
   */
  readonly #deadlines = new Deadlines<number>((id, at) => {
    const flow = this.#flows.get(id);
    return flow !== undefined && (flow.dial?.deadline === at || flow.closeAt === at);
  });
  /** What `#timers` passes to each deadline due (one function, not one per turn). */
  readonly #onDue = (id: number) => this.#due(this.#flows.get(id)!, this.#firing);
  /** The time `#timers` fires deadlines for. */
  #firing = 0;
  /** Triples of id, bytes up, bytes down of flows closed since the last report. */
  #closed: number[] = [];
  /** Messages of this turn or request, sent as one at its end: a storm opens hundreds per turn. */
  #outbox: FromWorker[] = [];
  readonly #toMain: (message: FromWorker) => void;
  readonly #dirty: Flow[] = [];

  /** Opens the epoll set and the wake-up eventfd; throws when the kernel refuses either. */
  constructor(libc: C.Libc, post: (message: FromWorker) => void, options: LoopOptions) {
    this.#libc = libc;
    this.#toMain = post;
    this.#post = (message) => void this.#outbox.push(message);
    this.#now = options.now ?? (() => performance.now());
    this.#release = options.releaseMemory ?? (() => {});
    this.#collect = options.collectGarbage ?? (() => {});
    this.#severed = options.severed ?? (() => {});
    this.#eventSize = C.epollEventSize(options.arch);
    this.#dataOffset = C.epollDataOffset(options.arch);
    this.#events = new Uint8Array(this.#eventSize * MAX_EVENTS);
    this.#eventsView = new DataView(this.#events.buffer);
    this.#ctlEvent = new Uint8Array(this.#eventSize);
    this.#ctlView = new DataView(this.#ctlEvent.buffer);
    this.#ep = libc.epoll_create1(C.SOCK_CLOEXEC);
    this.wakeFd = libc.eventfd(0, C.SOCK_NONBLOCK | C.SOCK_CLOEXEC);
    if (this.#ep < 0 || this.wakeFd < 0) {
      throw new Error(`epoll data plane: ${C.errnoName(libc.errno())}`);
    }
    this.#epollCtl(C.EPOLL_CTL_ADD, this.wakeFd, C.EPOLLIN, 0);
    this.#nextReport = this.#now() + REPORT_EVERY_MS;
  }

  /** Sessions open on this thread. */
  get sessions(): number {
    return this.#flows.size;
  }

  /** "quit" was received: `turn` should not be called again (see `close`). */
  get quitting(): boolean {
    return this.#quitting;
  }

  // ---- epoll interest ----------------------------------------------------------------------------

  #wanted(s: Sock): number {
    // One report of the connect's end, then the kernel stops watching the socket by itself (its
    // interest is then none, as `#connected` records): the splice sets what it waits for next.
    if (s.connecting) return C.EPOLLOUT | C.EPOLLONESHOT;
    let mask = s.queue.length > 0 ? C.EPOLLOUT : 0;
    if (s.flow.spliced) {
      if (!s.readEnded && !s.paused) mask |= C.EPOLLIN | C.EPOLLRDHUP;
    } else if (s.isClient && !s.finBeforeSplice) {
      // Watched for reading from its accept, as the splice will want (MySQL's server speaks
      // first, so nothing comes before it), and for leaving while its node is dialled.
      mask |= s.early ? C.EPOLLRDHUP : C.EPOLLIN | C.EPOLLRDHUP;
    }
    return mask;
  }

  #epollCtl(op: number, fd: number, mask: number, serial: number): number {
    this.#ctlView.setUint32(0, mask, true);
    this.#ctlView.setUint32(this.#dataOffset, fd, true);
    this.#ctlView.setUint32(this.#dataOffset + 4, serial, true);
    return this.#libc.epoll_ctl(this.#ep, op, fd, this.#ctlEvent);
  }

  /** Registers what `s` waits for now. */
  #sync(s: Sock): void {
    const mask = this.#wanted(s);
    if (mask === s.mask) return;
    if (s.mask < 0) {
      // Out of the set (after a hang-up it did not want): back in only when it wants something.
      if (mask === 0 && s.queue.length === 0) return;
      this.#epollCtl(C.EPOLL_CTL_ADD, s.fd, mask, s.serial);
    } else {
      this.#epollCtl(C.EPOLL_CTL_MOD, s.fd, mask, s.serial);
    }
    s.mask = mask;
  }

  // ---- flows -------------------------------------------------------------------------------------

  #newSock(fd: number, flow: Flow, isClient: boolean): Sock {
    const s = new Sock(fd, this.#nextSerial++ >>> 0, flow, isClient);
    this.#socks[fd] = s;
    return s;
  }

  #closeSock(s: Sock | null): void {
    if (!s || this.#socks[s.fd] !== s) return;
    if (!s.isClient) this.#answered(s.flow);
    this.#socks[s.fd] = undefined;
    this.#libc.close(s.fd);
    for (const request of s.flushWaiters) this.#post(["failed", request, "connection closed"]);
    s.flushWaiters = NO_REQUESTS;
    s.queue = NO_CHUNKS;
  }

  /** Ends a flow: both sockets closed, the main thread told with the final byte counts. */
  #finish(flow: Flow): void {
    if (flow.closed) return;
    flow.closed = true;
    if (flow.dial) this.#post(["failed", flow.dial.request, "client closed"]);
    flow.dial = null;
    this.#closeSock(flow.client);
    this.#closeSock(flow.server);
    this.#flows.delete(flow.id);
    // Sent as one message at the end of this turn or request: a sever closes thousands at once.
    if (!flow.reported) this.#closed.push(flow.id, flow.up, flow.down);
  }

  /** Sends what this turn or request has to say, closed sessions last, as one message. */
  #reportClosed(): void {
    if (this.#closed.length > 0) {
      this.#post(["closed", this.#closed]);
      this.#closed = [];
    }
    const out = this.#outbox;
    if (out.length === 0) return;
    this.#outbox = [];
    this.#toMain(out.length === 1 ? out[0] : ["batch", out]);
  }

  #setOption(fd: number, level: number, name: number, value: number): void {
    this.#intOption[0] = value;
    this.#libc.setsockopt(fd, level, name, this.#intOption, 4);
  }

  #tune(fd: number, keepAlive: number): void {
    this.#setOption(fd, C.IPPROTO_TCP, C.TCP_NODELAY, 1);
    if (keepAlive > 0) {
      const seconds = Math.max(1, Math.round(keepAlive / 1000));
      this.#setOption(fd, C.SOL_SOCKET, C.SO_KEEPALIVE, 1);
      this.#setOption(fd, C.IPPROTO_TCP, C.TCP_KEEPIDLE, seconds);
      this.#setOption(fd, C.IPPROTO_TCP, C.TCP_KEEPINTVL, seconds);
    }
  }

  #localAddress(fd: number): { address: string; port: number } {
    this.#addressLength[0] = C.SOCKADDR_SIZE;
    this.#addressBuffer.fill(0);
    this.#libc.getsockname(fd, this.#addressBuffer, this.#addressLength);
    return C.readSockaddr(this.#addressBuffer);
  }

  #acceptAll(): void {
    const libc = this.#libc;
    for (let i = 0; i < 64 && this.#listenFd >= 0; i++) {
      this.#addressLength[0] = C.SOCKADDR_SIZE;
      const fd = libc.accept4(
        this.#listenFd,
        this.#addressBuffer,
        this.#addressLength,
        C.SOCK_NONBLOCK | C.SOCK_CLOEXEC,
      );
      if (fd < 0) {
        const code = libc.errno();
        if (C.isTransient(code) || code === C.ECONNABORTED) return;
        // Out of descriptors: the pending connection stays in the backlog; stop watching the
        // listen socket for a moment instead of spinning on it.
        this.#epollCtl(C.EPOLL_CTL_DEL, this.#listenFd, 0, 0);
        this.#acceptPausedUntil = this.#now() + ACCEPT_PAUSE_MS;
        this.#post(["fault", `accept failed: ${C.errnoName(code)}; pausing ${ACCEPT_PAUSE_MS} ms`]);
        return;
      }
      const remote = C.readSockaddr(this.#addressBuffer);
      // Options come from the listener (Linux copies them to accepted sockets).
      const local = this.#boundLocal ?? this.#localAddress(fd);
      const flow = new Flow(this.#nextId++);
      flow.client = this.#newSock(fd, flow, true);
      this.#flows.set(flow.id, flow);
      this.#collectAt = this.#now() + COLLECT_AFTER_QUIET_MS;
      this.#sync(flow.client);
      this.#post(["open", flow.id, remote.address, remote.port, local.address, local.port]);
    }
  }

  /** Sends what it can of `data[0, length)` to `to`, queueing the rest; false when queued. */
  #send(to: Sock, data: Uint8Array, length: number): boolean {
    if (to.queue.length > 0) {
      to.queue.push(data.slice(0, length));
      return false;
    }
    const n = this.#libc.send(to.fd, data, length, C.MSG_NOSIGNAL);
    if (n === length) return true;
    if (n < 0 && !C.isTransient(this.#libc.errno())) {
      this.#finish(to.flow);
      return false;
    }
    to.queue = [data.slice(Math.max(0, n), length)];
    this.#sync(to);
    return false;
  }

  #readable(s: Sock): void {
    const flow = s.flow;
    const n = this.#libc.recv(s.fd, this.#buffer, BUFFER_SIZE, 0);
    if (n > 0) {
      if (s.isClient) flow.up += n;
      else {
        flow.down += n;
        if (flow.slot) this.#answered(flow);
      }
      if (!flow.dirty) {
        flow.dirty = true;
        this.#dirty.push(flow);
      }
      const to = s.peer!;
      if (!this.#send(to, this.#buffer, n) && !flow.closed) {
        s.paused = true; // resumed when `to` drains
        this.#sync(s);
      }
      return;
    }
    if (n < 0) {
      if (!C.isTransient(this.#libc.errno())) this.#finish(flow);
      return;
    }
    if (!s.isClient && flow.slot) this.#answered(flow); // a FIN answers too: it was accepted
    s.readEnded = true;
    this.#sync(s);
    this.#endWrite(s.peer!);
    this.#settle(flow);
  }

  /** Passes a FIN on once everything queued for `s` is sent. */
  #endWrite(s: Sock): void {
    if (s.finSent) return;
    if (s.queue.length > 0) {
      s.endAfterFlush = true;
      return;
    }
    s.finSent = true;
    s.endAfterFlush = false;
    this.#libc.shutdown(s.fd, C.SHUT_WR);
  }

  /** Closes a flow whose two directions are both done. */
  #settle(flow: Flow): void {
    const { client, server } = flow;
    if (!server) return;
    if (client.readEnded && server.readEnded && client.finSent && server.finSent) {
      this.#finish(flow);
    }
  }

  #writable(s: Sock): void {
    while (s.queue.length > 0) {
      const chunk = s.queue[0];
      const n = this.#libc.send(s.fd, chunk, chunk.length, C.MSG_NOSIGNAL);
      if (n < 0) {
        if (!C.isTransient(this.#libc.errno())) this.#finish(s.flow);
        return;
      }
      if (n < chunk.length) {
        s.queue[0] = chunk.subarray(n);
        return;
      }
      s.queue.shift();
    }
    s.queue = NO_CHUNKS;
    for (const request of s.flushWaiters) this.#post(["done", request]);
    s.flushWaiters = NO_REQUESTS;
    if (s.endAfterFlush) this.#endWrite(s);
    const peer = s.peer;
    if (peer && peer.paused) {
      peer.paused = false;
      this.#sync(peer);
    }
    this.#sync(s);
    if (s.flow.closeAt > 0 && s.isClient) this.#finish(s.flow);
    else this.#settle(s.flow);
  }

  #connected(s: Sock, bits: number): void {
    const flow = s.flow;
    const dial = flow.dial!;
    // Writable without an error or hang-up: the connect succeeded, and there is no error to read
    // (a system call less per session in a reconnect storm).
    let code = 0;
    if ((bits & (C.EPOLLERR | C.EPOLLHUP)) !== 0) {
      this.#intOption[0] = 0;
      this.#addressLength[0] = 4;
      this.#libc.getsockopt(s.fd, C.SOL_SOCKET, C.SO_ERROR, this.#intOption, this.#addressLength);
      code = this.#intOption[0];
    }
    flow.dial = null;
    if (code !== 0) {
      this.#closeSock(s);
      flow.server = null;
      this.#post([
        "failed",
        dial.request,
        `connect to ${dial.target} failed: ${C.errnoName(code)}`,
      ]);
      return;
    }
    s.connecting = false;
    s.mask = 0;
    this.#dialled(flow, dial);
  }

  /** The node side is connected: spliced at once, then answered. */
  #dialled(flow: Flow, dial: Dial): void {
    if (!this.#splice(flow, dial.header)) {
      return this.#post(["failed", dial.request, `cannot write to ${dial.target}`]);
    }
    this.#post(["done", dial.request]);
  }

  /** Bytes pass both ways from now on, after `header` to the node; false if the node is gone. */
  #splice(flow: Flow, header: Uint8Array | null): boolean {
    flow.spliced = true;
    if (header !== null) this.#send(flow.server!, header, header.length);
    if (flow.closed) return false;
    // Bytes (and a FIN) the client sent while its node was dialled are read now.
    this.#sync(flow.client);
    this.#sync(flow.server!);
    return true;
  }

  #dispatch(fd: number, serial: number, bits: number): void {
    if (fd === this.wakeFd) {
      this.#libc.read(this.wakeFd, this.#counter, 8);
      return;
    }
    if (fd === this.#listenFd) {
      this.#acceptAll();
      return;
    }
    const s = this.#socks[fd];
    if (!s || s.serial !== serial) return; // closed earlier in this batch
    const flow = s.flow;
    if (s.connecting) {
      this.#connected(s, bits);
      return;
    }
    if (!flow.spliced && s.isClient && (s.mask & C.EPOLLIN) !== 0) {
      // Bytes or a FIN before the splice: not read until it, so no longer watched for them.
      s.early = true;
      this.#sync(s);
    }
    const mask = s.mask;
    if ((bits & C.EPOLLERR) !== 0 && (mask & C.EPOLLIN) === 0) {
      this.#finish(flow); // reset while nobody reads it: nothing more can pass
      return;
    }
    if ((bits & C.EPOLLOUT) !== 0 && s.queue.length > 0) this.#writable(s);
    if (flow.closed || this.#socks[fd] !== s) return;
    if ((mask & C.EPOLLIN) !== 0) {
      this.#readable(s);
      return;
    }
    if (!flow.spliced && s.isClient && (bits & (C.EPOLLRDHUP | C.EPOLLHUP)) !== 0) {
      // The client sent FIN while its node is dialled: its bytes stay in the kernel and are
      // read after the splice, then the FIN is passed on.
      s.finBeforeSplice = true;
      this.#sync(s);
      if ((bits & C.EPOLLHUP) === 0) return;
    }
    if ((bits & C.EPOLLHUP) !== 0 && (s.mask & (C.EPOLLIN | C.EPOLLOUT)) === 0) {
      // Hung up while it is not read (before the splice, or paused): leave the set until it is;
      // level-triggered, it would be reported on every turn.
      this.#epollCtl(C.EPOLL_CTL_DEL, s.fd, 0, 0);
      s.mask = -1;
    }
  }

  // ---- messages from the main thread -------------------------------------------------------------

  /** Carries out one message from the main thread. */
  /** One message from the main thread, or a batch of them; what they cause goes back as one. */
  handle(message: ToWorker): void {
    if (message[0] !== "batch") this.#handle(message);
    else {
      for (const one of message[1]) {
        try {
          this.#handle(one);
        } catch (error) {
          // One bad message does not lose the rest of its batch.
          this.#post(["fault", error instanceof Error ? error.message : String(error)]);
        }
      }
    }
    this.#reportClosed();
  }

  #handle(message: ToWorker): void {
    switch (message[0]) {
      case "listen": {
        const [, host, port, keepAlive] = message;
        this.#keepAliveMs = keepAlive;
        this.#listen(host, port);
        return;
      }
      case "stop":
        if (this.#listenFd >= 0) {
          this.#libc.close(this.#listenFd);
          this.#listenFd = -1;
        }
        this.#post(["stopped"]);
        return;
      case "quit":
        this.#quitting = true;
        return;
      case "dial": {
        const [, request, id, host, port, timeoutMs, keepAliveMs, limit = 0, header] = message;
        const flow = this.#flows.get(id);
        if (!flow) return this.#post(["failed", request, "client closed"]);
        this.#closeSock(flow.server);
        flow.server = null;
        const target = `${host.includes(":") ? `[${host}]` : host}:${port}`;
        let node = this.#nodes.get(target);
        if (!node) this.#nodes.set(target, node = new NodeDials(host, port));
        node.limit = limit;
        const deadline = this.#now() + timeoutMs;
        flow.dial = {
          request,
          target,
          keepAliveMs,
          deadline,
          timeoutMs,
          node,
          started: false,
          header: header ?? null,
        };
        this.#deadlines.push(deadline, id);
        node.waiting.push(flow);
        this.#admit(node);
        return;
      }
      case "write": {
        const [, request, id, side, data] = message;
        const flow = this.#flows.get(id);
        const s = side === "client" ? flow?.client : flow?.server;
        if (!s || s.finSent) return this.#post(["failed", request, "connection closed"]);
        if (this.#send(s, data, data.length)) this.#post(["done", request]);
        else if (flow!.closed) this.#post(["failed", request, "connection closed"]);
        else if (s.flushWaiters === NO_REQUESTS) s.flushWaiters = [request];
        else s.flushWaiters.push(request);
        return;
      }
      case "endWith": {
        const [, id, data] = message;
        const flow = this.#flows.get(id);
        if (!flow || flow.client.finSent) return;
        // Sent whole (the usual case: one small packet), the client is closed at once; the
        // kernel still delivers the bytes and the FIN. Otherwise once the rest is flushed, or
        // after a grace period for a client that does not read.
        if (this.#send(flow.client, data, data.length)) return this.#finish(flow);
        if (flow.closed) return;
        this.#endWrite(flow.client);
        flow.closeAt = this.#now() + END_WITH_GRACE_MS;
        this.#deadlines.push(flow.closeAt, id);
        return;
      }
      case "destroy":
        return this.#destroy(message[1], message[2]);
      case "destroyMany":
        for (const id of message[2]) this.#destroy(id, "server");
        return this.#sever(message[1]);
      case "cancel":
        return this.#cancel(message[1]);
    }
  }

  /**
   * A sever: every node side first, reported as ended as it goes (in parts, so the main thread's
   * books overlap the rest), since the sever's confirmation only waits for no session to reach
   * its node any more; then, a large sever once the other threads handed one are that far too
   * (sever_gate.ts), every descriptor is closed. A node side is aborted rather than shut
   * down or closed: the node gets a reset, so bytes still queued towards it are dropped rather
   * than delivered before a FIN, and the kernel does less than for a FIN (no answer to take) or
   * a close; no event is read before the close in this same call.
   */
  #sever(ids: Float64Array): void {
    const whole: Flow[] = [];
    for (const id of ids) {
      const flow = this.#flows.get(id);
      if (!flow || flow.closed) continue;
      this.#abort(flow.server);
      whole.push(flow);
      this.#closed.push(flow.id, flow.up, flow.down);
      flow.reported = true;
      // Reported in parts: the main thread keeps the books of one while the next is shut down.
      if (this.#closed.length >= SEVER_REPORT_EVERY * 3) this.#reportClosed();
    }
    this.#reportClosed();
    if (gated(ids.length)) this.#severed();
    for (const flow of whole) this.#finish(flow);
  }

  /** A sever met a flow whose node is dialled (messages.ts says what becomes of it). */
  #cancel(id: number): void {
    const flow = this.#flows.get(id);
    if (!flow || flow.closed) return;
    if (flow.spliced) return this.#finish(flow);
    const dial = flow.dial;
    if (dial) {
      flow.dial = null;
      this.#post(["failed", dial.request, "cancelled"]);
    }
    this.#closeSock(flow.server);
    flow.server = null;
  }

  /** Aborts a node side (see `#sever`); its descriptor stays until the flow is finished. */
  #abort(s: Sock | null): void {
    if (s) this.#libc.connect(s.fd, C.UNSPEC_SOCKADDR, C.UNSPEC_SOCKADDR.length);
  }

  #destroy(id: number, side: "client" | "server"): void {
    const flow = this.#flows.get(id);
    if (!flow) return;
    if (side === "client") {
      // One session severed: its node side ends as in a sever of many.
      this.#abort(flow.server);
      return this.#finish(flow);
    }
    this.#closeSock(flow.server);
    flow.server = null;
  }

  #listen(host: string, port: number): void {
    const libc = this.#libc;
    const address = C.sockaddr(host, port);
    if (!address) {
      this.#post(["listenFailed", `listen ${host}:${port}: not an IP address`, "EINVAL"]);
      return;
    }
    const family = address.length === 16 ? C.AF_INET : C.AF_INET6;
    const fd = libc.socket(family, C.SOCK_STREAM | C.SOCK_NONBLOCK | C.SOCK_CLOEXEC, 0);
    if (fd < 0) {
      const code = C.errnoName(libc.errno());
      this.#post(["listenFailed", `listen ${host}:${port}: ${code}`, code]);
      return;
    }
    this.#setOption(fd, C.SOL_SOCKET, C.SO_REUSEADDR, 1);
    this.#setOption(fd, C.SOL_SOCKET, C.SO_REUSEPORT, 1);
    // Set once here rather than on every accepted socket, which inherits them: a storm of
    // reconnects costs four system calls less per client.
    this.#tune(fd, this.#keepAliveMs);
    if (libc.bind(fd, address, address.length) < 0 || libc.listen(fd, LISTEN_BACKLOG) < 0) {
      const code = C.errnoName(libc.errno());
      libc.close(fd);
      this.#post(["listenFailed", `listen ${host}:${port}: ${code}`, code]);
      return;
    }
    this.#listenFd = fd;
    this.#epollCtl(C.EPOLL_CTL_ADD, fd, C.EPOLLIN, 0);
    const bound = this.#localAddress(fd);
    this.#boundLocal = /^(0\.0\.0\.0|::)$/.test(bound.address) ? null : bound;
    this.#post(["listening", bound.port, this.wakeFd, libc.gettid()]);
    this.#releaseAt = this.#now() + RELEASE_AFTER_START_MS;
  }

  /** Starts `flow`'s dial, taking a slot of its node until the node answers. */
  #connect(flow: Flow): void {
    const libc = this.#libc;
    const dial = flow.dial!;
    dial.started = true;
    const fail = (why: string) => {
      flow.dial = null;
      this.#post(["failed", dial.request, `connect to ${dial.target} ${why}`]);
    };
    const address = dial.node.address;
    if (!address) return fail("failed: not an IP address");
    const family = address.length === 16 ? C.AF_INET : C.AF_INET6;
    const fd = libc.socket(family, C.SOCK_STREAM | C.SOCK_NONBLOCK | C.SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(`failed: ${C.errnoName(libc.errno())}`);
    this.#tune(fd, dial.keepAliveMs);
    const s = this.#newSock(fd, flow, false);
    flow.server = s;
    flow.slot = dial.node;
    dial.node.unanswered++;
    if (libc.connect(fd, address, address.length) === 0) {
      flow.dial = null;
      this.#dialled(flow, dial);
      return;
    }
    const code = libc.errno();
    if (code !== C.EINPROGRESS && code !== C.EINTR) {
      this.#closeSock(s);
      flow.server = null;
      return fail(`failed: ${C.errnoName(code)}`);
    }
    s.connecting = true;
    this.#sync(s);
  }

  /** `flow`'s node answered, or its connect ended: the slot goes to the next dial waiting. */
  #answered(flow: Flow): void {
    const node = flow.slot;
    if (!node) return;
    flow.slot = null;
    node.unanswered--;
    this.#admit(node);
  }

  /** Starts the dials waiting for `node`, oldest first, while it has free slots. */
  #admit(node: NodeDials): void {
    // A connect that fails at once gives its slot back inside this loop, not by recursion.
    if (this.#admitting) return;
    this.#admitting = true;
    try {
      while (!node.full) {
        const next = node.next();
        if (!next) break;
        const dial = next.dial;
        if (next.closed || !dial || dial.started || dial.node !== node) continue; // gone or timed out
        this.#connect(next);
      }
    } finally {
      this.#admitting = false;
    }
  }

  // ---- the loop ----------------------------------------------------------------------------------

  /** Nothing timed: no deadline, byte report, accept pause or memory release pending. */
  #idle(): boolean {
    return this.#deadlines.size === 0 && this.#dirty.length === 0 &&
      this.#acceptPausedUntil === 0 &&
      this.#releaseAt === 0 && this.#collectAt === 0;
  }

  /** Milliseconds epoll_wait may block: until the next deadline or byte report; -1 for none. */
  timeout(): number {
    let next = this.#deadlines.next();
    if (this.#dirty.length > 0) next = Math.min(next, this.#nextReport);
    if (this.#acceptPausedUntil > 0) next = Math.min(next, this.#acceptPausedUntil);
    if (this.#releaseAt > 0) next = Math.min(next, this.#releaseAt);
    if (this.#collectAt > 0) next = Math.min(next, this.#collectAt);
    if (next === Infinity) return -1;
    return Math.max(0, Math.ceil(next - this.#now()));
  }

  #timers(): void {
    if (this.#idle()) return;
    const t = this.#now();
    if (this.#releaseAt > 0 && t >= this.#releaseAt) {
      this.#releaseAt = 0;
      this.#release();
    }
    if (this.#collectAt > 0 && t >= this.#collectAt) {
      this.#collectAt = 0;
      this.#collect();
    }
    if (this.#acceptPausedUntil > 0 && t >= this.#acceptPausedUntil) {
      this.#acceptPausedUntil = 0;
      if (this.#listenFd >= 0) this.#epollCtl(C.EPOLL_CTL_ADD, this.#listenFd, C.EPOLLIN, 0);
    }
    this.#firing = t;
    this.#deadlines.fire(t, this.#onDue);
    if (this.#dirty.length > 0 && t >= this.#nextReport) this.#report(t);
  }

  /** A deadline of `flow` passed by `t`: its dial times out, or its endWith's grace ends. */
  #due(flow: Flow, t: number): void {
    const dial = flow.dial;
    if (dial && t >= dial.deadline) {
      flow.dial = null;
      this.#closeSock(flow.server);
      flow.server = null;
      const queued = dial.started
        ? ""
        : ` (waiting behind ${dial.node.unanswered} unanswered connects)`;
      this.#post([
        "failed",
        dial.request,
        `connect to ${dial.target} timed out after ${dial.timeoutMs}ms${queued}`,
      ]);
    }
    if (flow.closeAt > 0 && t >= flow.closeAt) this.#finish(flow);
  }

  #report(t: number): void {
    const changed: number[] = [];
    for (const flow of this.#dirty) {
      flow.dirty = false;
      if (flow.closed) continue;
      if (flow.up === flow.reportedUp && flow.down === flow.reportedDown) continue;
      flow.reportedUp = flow.up;
      flow.reportedDown = flow.down;
      changed.push(flow.id, flow.up, flow.down);
    }
    this.#dirty.length = 0;
    this.#nextReport = t + REPORT_EVERY_MS;
    if (changed.length > 0) this.#post(["bytes", changed]);
  }

  /**
   * One turn: waits in epoll_wait up to `timeoutMs` (the loop's own timeout unless given),
   * handles what is ready, then the timers. True when the main thread woke it (a message is
   * on its way through the event loop).
   */
  turn(timeoutMs: number = this.timeout()): boolean {
    const n = this.#libc.epoll_wait(this.#ep, this.#events, MAX_EVENTS, timeoutMs);
    if (n < 0) {
      const code = this.#libc.errno();
      if (code === C.EINTR) return false;
      throw new Error(`epoll_wait failed: ${C.errnoName(code)}`);
    }
    let woken = false;
    const view = this.#eventsView;
    for (let i = 0; i < n; i++) {
      const at = i * this.#eventSize;
      const fd = view.getUint32(at + this.#dataOffset, true);
      if (fd === this.wakeFd) woken = true;
      this.#dispatch(fd, view.getUint32(at + this.#dataOffset + 4, true), view.getUint32(at, true));
    }
    this.#timers();
    this.#reportClosed();
    return woken;
  }

  /** Closes every socket (quit, or a fault in the loop); `andLoop` closes epoll and the eventfd. */
  close(andLoop: boolean): void {
    for (const flow of [...this.#flows.values()]) this.#finish(flow);
    this.#reportClosed();
    if (this.#listenFd >= 0) this.#libc.close(this.#listenFd);
    this.#listenFd = -1;
    if (!andLoop) return;
    // Only after "quit": the main thread writes to the eventfd no more.
    this.#libc.close(this.wakeFd);
    this.#libc.close(this.#ep);
  }
}
