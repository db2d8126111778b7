/**
 * The clients of the scale bench's reconnect storm, in a process of their own: N connects at
 * once through libc (a non-blocking socket and connect each, then epoll until each has read its
 * greeting), so that a client costs the machine a few system calls and the proxy under test, not
 * the load generator, sets the pace. The runtime's own sockets cost several times the proxy's
 * work per connection, on the same two cores (docs/BENCHMARKS.md, notes on sessions at scale).
 *
 * Reads one JSON line per storm, `{"port", "n", "expect", "limitMs"}`, starts it at once and
 * answers one line: `{"servedAt"}` (ms from the start, sorted, one per greeting read),
 * `{"why"}` (failures by reason: an errno name, or "closed" before the greeting), `{"wrongNode"}`
 * (greetings without `expect`) and `{"stuck"}` (no answer within `limitMs`). The sockets still
 * open are closed once the answer is out. Linux, under Bun. `startStormClient` runs it from the
 * bench.
 */
import process from "node:process";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { loadLibc } from "#thread";
import * as C from "../../src/runtime/libc.ts";
import type { Libc } from "../../src/runtime/libc.ts";

/** Connects made between two looks at what has answered: clients that start while others are served. */
const CONNECTS_PER_LOOK = 64;
const MAX_EVENTS = 1024;

/** One storm: `n` clients of 127.0.0.1:`port`, each expecting a greeting that includes `expect`. */
export interface Storm {
  port: number;
  n: number;
  expect: string;
  limitMs: number;
}

export interface StormResult {
  servedAt: number[];
  why: Record<string, number>;
  wrongNode: number;
  stuck: number;
}

/** Starts the client process; resolves once it is ready for a storm. */
export function startStormClient(): Promise<{
  storm(storm: Storm): Promise<StormResult>;
  close(): void;
}> {
  const child = spawn(process.execPath, [import.meta.path], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout! });
  const next = () => new Promise<string>((r) => lines.once("line", r));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`storm client exited (${code})`)));
    next().then(() =>
      resolve({
        storm(storm) {
          const answer = next();
          child.stdin!.write(`${JSON.stringify(storm)}\n`);
          return answer.then((l) => JSON.parse(l));
        },
        close: () => child.stdin!.end(),
      })
    );
  });
}

function storm(
  libc: Libc,
  { port, n, expect, limitMs }: Storm,
): { result: StormResult; close(): void } {
  const EVENT = C.epollEventSize(process.arch);
  const DATA = C.epollDataOffset(process.arch);
  const t0 = performance.now();
  const address = C.sockaddr("127.0.0.1", port)!;
  const ep = libc.epoll_create1(C.SOCK_CLOEXEC); // EPOLL_CLOEXEC is O_CLOEXEC, as SOCK_CLOEXEC
  const fds = new Int32Array(n).fill(-1);
  const servedAt: number[] = [];
  const why: Record<string, number> = {};
  let wrongNode = 0;
  let settled = 0;
  const events = new Uint8Array(EVENT * MAX_EVENTS);
  const view = new DataView(events.buffer);
  const ctl = new Uint8Array(EVENT);
  const ctlView = new DataView(ctl.buffer);
  const buffer = new Uint8Array(512);
  const decoder = new TextDecoder();

  const settle = (i: number, reason?: string) => {
    if (reason) why[reason] = (why[reason] ?? 0) + 1;
    if (fds[i] >= 0) libc.close(fds[i]);
    fds[i] = -1;
    settled++;
  };
  const look = (timeoutMs: number) => {
    const ready = libc.epoll_wait(ep, events, MAX_EVENTS, timeoutMs);
    for (let e = 0; e < ready; e++) {
      const i = view.getUint32(e * EVENT + DATA, true);
      if (fds[i] < 0) continue;
      const got = libc.recv(fds[i], buffer, buffer.length, 0);
      if (got > 0) {
        servedAt.push(performance.now() - t0);
        if (!decoder.decode(buffer.subarray(0, got)).includes(expect)) wrongNode++;
        libc.epoll_ctl(ep, C.EPOLL_CTL_DEL, fds[i], ctl);
        settled++;
      } else if (got === 0) settle(i, "closed");
      else {
        const code = libc.errno();
        if (!C.isTransient(code)) settle(i, C.errnoName(code));
      }
    }
  };

  for (let i = 0; i < n; i++) {
    const fd = libc.socket(C.AF_INET, C.SOCK_STREAM | C.SOCK_NONBLOCK | C.SOCK_CLOEXEC, 0);
    if (fd < 0) {
      settle(i, C.errnoName(libc.errno()));
      continue;
    }
    fds[i] = fd;
    if (libc.connect(fd, address, address.length) < 0 && libc.errno() !== C.EINPROGRESS) {
      settle(i, C.errnoName(libc.errno()));
      continue;
    }
    ctlView.setUint32(0, C.EPOLLIN | C.EPOLLRDHUP, true);
    ctlView.setUint32(DATA, i, true);
    libc.epoll_ctl(ep, C.EPOLL_CTL_ADD, fd, ctl);
    if (i % CONNECTS_PER_LOOK === CONNECTS_PER_LOOK - 1) look(0);
  }
  while (settled < n && performance.now() - t0 < limitMs) {
    look(Math.max(1, Math.ceil(limitMs - (performance.now() - t0))));
  }
  const stuck = n - settled;
  servedAt.sort((a, b) => a - b);
  // Served clients stay open until the answer is out: the proxy's CPU for the storm is read
  // then, and closing them is no part of it.
  const close = () => {
    for (let i = 0; i < n; i++) if (fds[i] >= 0) libc.close(fds[i]);
    libc.close(ep);
  };
  return { result: { servedAt, why, wrongNode, stuck }, close };
}

if (import.meta.main) {
  const libc = await loadLibc();
  if (!libc) {
    console.error("storm_client: no libc through FFI here");
    process.exit(2);
  }
  console.log(JSON.stringify({ ready: true }));
  const commands = createInterface({ input: process.stdin });
  commands.on("line", (line) => {
    const { result, close } = storm(libc, JSON.parse(line));
    console.log(JSON.stringify(result));
    close();
  });
  commands.on("close", () => process.exit(0));
}
