/**
 * One epoll thread as the main thread sees it: the worker, its mailbox and wake-up, the
 * clients it accepted, and the requests waiting for its answers.
 *
 * Messages posted within one task go as one (`batch`), counted in the shared mailbox, and the
 * thread is woken once through its eventfd (it blocks in epoll_wait, not in the event loop).
 * Destroys go last, as one `destroyMany`: severing a node's sessions costs one message and one
 * wake per thread.
 */
import { startThread } from "#runtime";
import { getLogger } from "@logtape/logtape";
import type { ThreadTimes } from "../core/threads.ts";
import type { Libc } from "../runtime/libc.ts";
import type { FromWorker, ToWorker } from "./messages.ts";
import type { ClientConn } from "./plane.ts";
import { RemoteClient } from "./remote_client.ts";
import { gated, type SeverGate } from "./sever_gate.ts";

const log = getLogger(["galerad", "proxy"]);

/** An eventfd counter increment (8 bytes, little-endian 1). */
const WAKE = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);

/** What a thread reports to the plane that owns it. */
export interface ThreadOwner {
  /** Threads running now: a per-proxy limit is shared among them. */
  readonly threads: number;
  /** Where the threads handed one sever wait for each other's node sides (sever_gate.ts). */
  readonly severGate: SeverGate;
  /** A client the thread accepted (before the proxy hears of it). */
  opened(): void;
  /** A session on `thread` ended. */
  sessionEnded(thread: Thread): void;
  /** The thread broke; its sessions are gone. */
  threadFailed(thread: Thread, why: string): void;
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

export class Thread {
  readonly worker: Worker;
  readonly clients = new Map<number, RemoteClient>();
  /** Messages sent, shared with the thread, which reads until it has them all. */
  readonly mailbox = new Int32Array(new SharedArrayBuffer(4));
  wakeFd = -1;
  /** The thread's id, and its schedstat at the last reading (thread_growth.ts). */
  tid = -1;
  times: ThreadTimes | null = null;
  timesAt = 0;
  #requests = new Map<number, Waiter>();
  #nextRequest = 1;
  #answer: ((message: FromWorker) => void) | null = null;
  /** Destroys posted in this task: sessions to end whole, and sessions to drop the node side of. */
  #whole: number[] = [];
  #nodeSides: number[] = [];
  #queue: ToWorker[] = [];
  #lastRemote = "";
  #lastLocal = "";

  constructor(
    readonly owner: ThreadOwner,
    readonly onConnection: (conn: ClientConn) => void,
    readonly libc: Libc,
  ) {
    this.worker = startThread(
      new URL("./epoll_thread.ts", import.meta.url),
      "src/dataplane/epoll_thread.ts",
    );
    this.worker.onmessage = (event: MessageEvent<FromWorker>) => this.#receive(event.data);
    this.worker.onerror = (event: ErrorEvent) => {
      event.preventDefault?.();
      this.#fail(event.message || "data-plane thread failed");
    };
  }

  /**
   * Queues a message; everything posted within one task goes at its end as one message and one
   * wake, destroys last and together (a storm's dials, a sever's destroys).
   */
  post(message: ToWorker): void {
    if (this.#queue.length === 0 && this.#whole.length === 0 && this.#nodeSides.length === 0) {
      queueMicrotask(() => this.#flush());
    }
    if (message[0] !== "destroy") this.#queue.push(message);
    else if (message[2] === "client") this.#whole.push(message[1]);
    else this.#nodeSides.push(message[1]);
  }

  #flush(): void {
    const out = this.#queue;
    this.#queue = [];
    const whole = this.#whole;
    const nodeSides = this.#nodeSides;
    this.#whole = [];
    this.#nodeSides = [];
    if (whole.length + nodeSides.length === 1) {
      out.push(
        whole.length === 1 ? ["destroy", whole[0], "client"] : ["destroy", nodeSides[0], "server"],
      );
    } else if (whole.length + nodeSides.length > 1) {
      out.push(["destroyMany", Float64Array.from(whole), Float64Array.from(nodeSides)]);
      if (gated(whole.length)) this.owner.severGate.entered();
    }
    if (out.length === 0) return;
    Atomics.add(this.mailbox, 0, 1);
    this.worker.postMessage(out.length === 1 ? out[0] : ["batch", out]);
    if (this.wakeFd >= 0) this.libc.write(this.wakeFd, WAKE, 8);
  }

  /** Ends the thread: it leaves its loop and closes its descriptors, then is stopped. */
  terminate(): void {
    if (this.wakeFd >= 0) {
      this.post(["quit"]);
      this.#flush();
    }
    this.wakeFd = -1; // closed by the thread after "quit": never written again
    // A moment to leave epoll_wait before the worker is stopped.
    setTimeout(() => this.worker.terminate(), 100);
  }

  /** Sends a request and resolves when the thread answers `done`. */
  request(build: (request: number) => ToWorker): Promise<void> {
    const request = this.#nextRequest++;
    return new Promise((resolve, reject) => {
      this.#requests.set(request, { resolve, reject });
      this.post(build(request));
    });
  }

  /** Sends `listen` or `stop` and waits for the thread's answer to it. */
  ask(message: ToWorker): Promise<FromWorker> {
    return new Promise((resolve) => {
      this.#answer = resolve;
      this.post(message);
    });
  }

  #receive(message: FromWorker): void {
    switch (message[0]) {
      case "batch":
        for (const one of message[1]) this.#receive(one);
        return;
      case "open": {
        const [, id, remote, remotePort, local, localPort] = message;
        // Each message brings its own copy of the address strings: keep one while they repeat.
        if (remote !== this.#lastRemote) this.#lastRemote = remote;
        if (local !== this.#lastLocal) this.#lastLocal = local;
        const client = new RemoteClient(this, id, {
          remoteAddress: this.#lastRemote,
          remotePort,
          localAddress: this.#lastLocal,
          localPort,
        });
        this.clients.set(id, client);
        this.owner.opened();
        this.onConnection(client);
        return;
      }
      case "bytes": {
        const changed = message[1];
        for (let i = 0; i < changed.length; i += 3) {
          this.clients.get(changed[i])?.setBytes(changed[i + 1], changed[i + 2]);
        }
        return;
      }
      case "closed": {
        const ended = message[1];
        for (let i = 0; i < ended.length; i += 3) {
          const client = this.clients.get(ended[i]);
          if (!client) continue;
          this.clients.delete(ended[i]);
          client.setBytes(ended[i + 1], ended[i + 2]);
          client.markClosed();
        }
        this.owner.sessionEnded(this);
        return;
      }
      case "done":
      case "failed": {
        const waiter = this.#requests.get(message[1]);
        if (!waiter) return;
        this.#requests.delete(message[1]);
        if (message[0] === "done") waiter.resolve();
        else waiter.reject(new Error(message[2]));
        return;
      }
      case "fault":
        log.error("data-plane thread error: {reason}", { reason: message[1] });
        return;
      default: {
        const answer = this.#answer;
        this.#answer = null;
        answer?.(message);
      }
    }
  }

  /** A thread that broke: its sessions are gone; the owner starts a replacement. */
  #fail(why: string): void {
    this.wakeFd = -1;
    this.worker.terminate();
    for (const waiter of this.#requests.values()) waiter.reject(new Error(why));
    this.#requests.clear();
    for (const client of this.clients.values()) client.markClosed();
    this.clients.clear();
    this.#answer?.(["listenFailed", why, ""]);
    this.#answer = null;
    this.owner.threadFailed(this, why);
  }
}
