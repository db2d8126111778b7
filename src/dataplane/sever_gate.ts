/**
 * The threads of one plane sever together: each aborts its node sides, then waits until every
 * thread handed the same sever has done so (or `SEVER_GATE_MS` passed) before closing its clients.
 * The clients' closes cannot be served earlier anyway (the route holds until the sever is
 * confirmed), and on a machine with few cores a thread closing clients takes CPU from one still
 * cutting nodes, which is what the confirmation waits for.
 *
 * One shared counter: the main thread adds one for each thread it posts a large sever to
 * (`gated`), before the post; a thread takes one off once its node sides are aborted, wakes the
 * others at zero, and otherwise blocks until zero or the deadline. The deadline bounds what a thread that never
 * answers (it failed) can cost; the plane clears the counter when it replaces one.
 */

/** Longest a thread holds its clients' closes for another thread's node sides. */
export const SEVER_GATE_MS = 100;

/**
 * Sessions a destroy must end whole for its thread to pass the gate. Smaller ones cost little to
 * close and do not wait: a thread closing a few idle sessions is never held up by a sever
 * elsewhere, and no sever waits for it.
 */
export const GATED_FROM = 1024;

/** Whether a destroy of `sessions` whole sessions passes the gate (main thread and thread alike). */
export function gated(sessions: number): boolean {
  return sessions >= GATED_FROM;
}

export class SeverGate {
  readonly counter: Int32Array;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.counter = new Int32Array(buffer);
  }

  /** Main thread: a sever is about to be posted to one more thread. */
  entered(): void {
    Atomics.add(this.counter, 0, 1);
  }

  /** Main thread: a thread is gone; whatever it owed the others is forgiven. */
  clear(): void {
    Atomics.store(this.counter, 0, 0);
    Atomics.notify(this.counter, 0);
  }

  /** A thread: its node sides are cut; returns once every thread's are, or at the deadline. */
  cut(): void {
    if (Atomics.sub(this.counter, 0, 1) <= 1) {
      // Below zero only after a clear raced a sever: start again from nothing owed.
      Atomics.compareExchange(this.counter, 0, -1, 0);
      Atomics.notify(this.counter, 0);
      return;
    }
    const deadline = performance.now() + SEVER_GATE_MS;
    for (;;) {
      const owed = Atomics.load(this.counter, 0);
      const left = deadline - performance.now();
      if (owed <= 0 || left <= 0) return;
      Atomics.wait(this.counter, 0, owed, left);
    }
  }
}
