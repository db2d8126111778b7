/**
 * An epoll data-plane thread (a Worker the main thread starts, thread.ts): one EpollLoop over
 * the runtime's libc, blocking in epoll_wait. The main thread wakes it for a message by bumping
 * a shared counter and writing to the loop's eventfd; the thread then yields to the event loop
 * until it has received every message counted, and blocks again.
 */
import { arch, collectGarbage, loadLibc, releaseMemory } from "#thread";
import { EpollLoop } from "./epoll_loop.ts";
import type { FromWorker, ToWorker } from "./messages.ts";
import { SeverGate } from "./sever_gate.ts";

const scope = globalThis as unknown as {
  postMessage(message: FromWorker): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
};

let loop: EpollLoop | null = null;
let mailbox: Int32Array | null = null;
let gate: SeverGate | null = null;
let received = 0;
let mailWaiter: { target: number; resolve: () => void } | null = null;
/** Messages that came while libc was loading. */
const early: ToWorker[] = [];

function post(message: FromWorker): void {
  scope.postMessage(message);
  // Listening: the loop starts once this task (the listen message) is done.
  const all = message[0] === "batch" ? message[1] : [message];
  if (all.some((m) => m[0] === "listening")) setTimeout(start, 0);
}

scope.onmessage = (event) => {
  if (loop) receive(loop, event.data);
  else early.push(event.data);
};

function receive(loop: EpollLoop, message: ToWorker): void {
  received++;
  for (const one of message[0] === "batch" ? message[1] : [message]) {
    if (one[0] !== "listen") continue;
    if (one[4]) mailbox = new Int32Array(one[4]);
    if (one[5]) gate = new SeverGate(one[5]);
  }
  try {
    loop.handle(message);
  } catch (error) {
    post(["fault", error instanceof Error ? error.message : String(error)]);
  }
  if (mailWaiter && received >= mailWaiter.target) {
    const { resolve } = mailWaiter;
    mailWaiter = null;
    resolve();
  }
}

/** Waits (in the event loop) until every message the main thread counted has arrived. */
function mail(): Promise<void> | null {
  const target = mailbox ? Atomics.load(mailbox, 0) : received;
  if (received >= target) return null;
  return new Promise((resolve) => (mailWaiter = { target, resolve }));
}

async function run(loop: EpollLoop): Promise<void> {
  while (!loop.quitting) {
    if (!loop.turn()) continue;
    const pending = mail();
    if (pending) await pending;
  }
  loop.close(true);
}

function start(): void {
  run(loop!).catch((error) => {
    // The thread is done for: close its sockets, then fail so the plane replaces it.
    post(["fault", error instanceof Error ? error.message : String(error)]);
    loop!.close(false);
    throw error;
  });
}

loadLibc().then((libc) => {
  if (!libc) throw new Error("epoll data plane: cannot load libc");
  loop = new EpollLoop(libc, post, {
    arch,
    releaseMemory,
    collectGarbage,
    severed: () => gate?.cut(),
  });
  for (const message of early.splice(0)) receive(loop, message);
});
