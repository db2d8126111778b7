/**
 * Messages between the main thread and the epoll threads (thread.ts ↔ epoll_thread.ts).
 * Plain arrays: they are structured-cloned once per connection event, never per packet.
 */

/** Main thread → data-plane thread. `request` numbers are answered by `done`/`failed`. */
export type ToWorker =
  /** `mailbox`: a shared counter of messages sent, see epoll_thread.ts. */
  | [
    "listen",
    host: string,
    port: number,
    keepAliveMs: number,
    mailbox?: SharedArrayBuffer,
    severGate?: SharedArrayBuffer,
  ]
  | ["stop"]
  /** Leave for good (sent before the thread is terminated). */
  | ["quit"]
  | [
    "dial",
    request: number,
    id: number,
    host: string,
    port: number,
    timeoutMs: number,
    keepAliveMs: number,
    /** This thread's share of the unanswered connects allowed per node; 0: no limit. */
    limit?: number,
    /**
     * Sent to the node first (a PROXY header). The flow is spliced as soon as the node side
     * connects: `done` means bytes pass, with no second exchange (a reconnect storm is
     * thousands of these at once).
     */
    header?: Uint8Array,
  ]
  /**
   * A sever reached a flow whose node is dialled: unless it is spliced already, its node side
   * is dropped before a byte passes and the dial fails "cancelled" (its client may be routed
   * again); a spliced one is ended whole.
   */
  | ["cancel", id: number]
  | ["write", request: number, id: number, side: "client" | "server", data: Uint8Array]
  | ["endWith", id: number, data: Uint8Array]
  | ["destroy", id: number, side: "client" | "server"]
  /**
   * Destroys as one message, one wake: a sever of many sessions costs a message per thread. The
   * ids of sessions to end whole, and of those to drop the node side of, as typed arrays: a
   * sever of thousands is copied to the thread as two blocks of memory, not thousands of arrays.
   */
  | ["destroyMany", sessions: Float64Array, nodeSides: Float64Array]
  /** What the main thread posted within one task, in order: one message, one wake. */
  | ["batch", messages: ToWorker[]];

/** Data-plane thread → main thread. */
export type FromWorker =
  /**
   * `wakeFd`: the eventfd to write to after each message; `tid`: the thread's
   * id, whose schedstat tells `--threads auto` how busy it is (core/threads.ts).
   */
  | ["listening", port: number, wakeFd?: number, tid?: number]
  | ["listenFailed", message: string, code: string]
  | ["stopped"]
  | [
    "open",
    id: number,
    remoteAddress: string,
    remotePort: number,
    localAddress: string,
    localPort: number,
  ]
  | ["done", request: number]
  | ["failed", request: number, message: string]
  /** Triples of session id, bytes up, bytes down (totals so far) for sessions that moved data. */
  | ["bytes", changed: number[]]
  /** Triples of session id, final bytes up, final bytes down, for sessions that ended. */
  | ["closed", ended: number[]]
  | ["fault", message: string]
  /** What one turn of the loop had to say, in order (one message, one wake of the main thread). */
  | ["batch", messages: FromWorker[]];
