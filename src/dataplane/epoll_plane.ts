/**
 * Client sessions on epoll threads (epoll_loop.ts): each thread listens on the proxy port with
 * SO_REUSEPORT, as HAProxy's `nbthread` does, so the kernel spreads new clients over them. The
 * main thread keeps every decision: it answers each new client with "dial this node" or
 * "refuse", so the proxy logic is the same whichever plane runs underneath.
 */
import { listenTcp } from "#runtime";
import { getLogger } from "@logtape/logtape";
import type { HostPort } from "../core/address.ts";
import type { Libc } from "../runtime/libc.ts";
import type { ListenOptions, TcpListener } from "../runtime/types.ts";
import { QuietCollector, releaseAfterStart } from "./memory.ts";
import type { ClientConn, DataPlane, ThreadGrowth } from "./plane.ts";
import { resolveIp } from "./resolve_ip.ts";
import { SeverGate } from "./sever_gate.ts";
import { Thread, type ThreadOwner } from "./thread.ts";
import { ThreadGrowthWatch } from "./thread_growth.ts";

const log = getLogger(["galerad", "proxy"]);

/** A binary built without the thread's entry point (compile.sh adds it). */
export class MissingThreadModule extends Error {}

export class EpollPlane implements DataPlane, ThreadOwner {
  readonly kind = "epoll";
  #threads = new Set<Thread>();
  readonly severGate = new SeverGate();
  #address: HostPort | null = null;
  #options: ListenOptions | null = null;
  #onConnection: ((conn: ClientConn) => void) | null = null;
  /** close() was called: no thread is restarted. */
  #stopping = false;
  /** Every thread has stopped listening: a thread ends with its last session. */
  #stopped = false;
  /** Collects what a burst of new sessions left on the main thread (memory.ts). */
  readonly #collector = new QuietCollector();
  #growth: ThreadGrowthWatch | null = null;

  constructor(
    public threads: number,
    readonly libc: Libc,
    readonly growth?: ThreadGrowth,
  ) {}

  async listen(
    address: HostPort,
    options: ListenOptions,
    onConnection: (conn: ClientConn) => void,
  ): Promise<TcpListener> {
    // Bind once without SO_REUSEPORT first: a port another program holds fails here as it would
    // with one thread, and port 0 becomes a concrete port the threads then share.
    const probe = await listenTcp(
      address,
      { keepAliveMs: options.keepAliveMs },
      (conn) => conn.destroy(),
    );
    const port = probe.port;
    await probe.close();
    this.#options = options;
    this.#onConnection = onConnection;
    this.#address = { host: await resolveIp(address.host), port };
    try {
      await Promise.all(Array.from({ length: this.threads }, () => this.#start()));
    } catch (error) {
      for (const thread of this.#threads) thread.terminate();
      this.#threads.clear();
      if (!/ModuleNotFound|epoll_thread/.test(String(error))) throw error;
      throw new MissingThreadModule(String(error));
    }
    // What starting up left (configuration, modules run once) is given back, once.
    releaseAfterStart();
    if (this.growth && this.growth.max > this.threads) {
      this.#growth = new ThreadGrowthWatch(this, this.growth);
    }
    return { port, close: () => this.#stop() };
  }

  running(): Iterable<Thread> {
    return this.#threads;
  }

  async grow(): Promise<void> {
    await this.#start();
    this.threads++;
  }

  async #start(): Promise<void> {
    const thread = new Thread(this, this.#onConnection!, this.libc);
    this.#threads.add(thread);
    const { host, port } = this.#address!;
    const answer = await thread.ask([
      "listen",
      host,
      port,
      this.#options!.keepAliveMs,
      thread.mailbox.buffer as SharedArrayBuffer,
      this.severGate.counter.buffer as SharedArrayBuffer,
    ]);
    if (answer[0] !== "listening") {
      this.#threads.delete(thread);
      thread.terminate();
      const [, message, code] = answer as ["listenFailed", string, string];
      throw Object.assign(new Error(message), { code: code || undefined });
    }
    thread.wakeFd = answer[2] ?? -1;
    thread.tid = answer[3] ?? -1;
  }

  /** Stops accepting on every thread; a thread ends once its last session has. */
  async #stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#growth?.stop();
    await Promise.all([...this.#threads].map((thread) => thread.ask(["stop"])));
    this.#stopped = true;
    for (const thread of this.#threads) this.sessionEnded(thread);
  }

  opened(): void {
    this.#collector.note();
  }

  sessionEnded(thread: Thread): void {
    if (!this.#stopped || thread.clients.size > 0) return;
    this.#threads.delete(thread);
    thread.terminate();
  }

  threadFailed(thread: Thread, why: string): void {
    if (!this.#threads.delete(thread)) return;
    this.severGate.clear();
    if (this.#stopping || !this.#address) return;
    log.error("data-plane thread failed ({reason}); its sessions are closed; starting another", {
      reason: why,
    });
    this.#start().catch((error) =>
      log.error("cannot restart a data-plane thread: {reason}", { reason: String(error) })
    );
  }
}
