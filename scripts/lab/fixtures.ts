/**
 * Test doubles on real loopback sockets: backends that greet with their name and echo, agents
 * whose answer a test flips, and small waiting helpers. Used by the bun suites.
 */
import dgram from "node:dgram";
import http from "node:http";
import net from "node:net";
import process from "node:process";
import { MAGIC, VERSION } from "../../src/peers/codec.ts";

export interface TestBackend {
  name: string;
  port: number;
  /** Open client sockets on this backend right now. */
  readonly open: number;
  /** Connections that ended with a reset (ECONNRESET) rather than a FIN. */
  readonly resets: number;
  close(): Promise<void>;
}

/**
 * A TCP server that writes `hello NAME\n` on connect, then echoes everything back; `onClose`
 * hears each connection end.
 */
export function startBackend(name: string, onClose?: () => void): Promise<TestBackend> {
  const sockets = new Set<net.Socket>();
  let resets = 0;
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => (sockets.delete(socket), onClose?.()));
    socket.on("error", (e: NodeJS.ErrnoException) => e.code === "ECONNRESET" && resets++);
    socket.write(`hello ${name}\n`);
    socket.on("data", (chunk) => socket.write(chunk));
    socket.on("end", () => socket.end());
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        name,
        port,
        get open() {
          return sockets.size;
        },
        get resets() {
          return resets;
        },
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

export interface AgentAnswer {
  healthy: boolean;
  index?: number;
  /** Respond only on `/` with a status code, like clustercheck (404 on /api/v1/status). */
  clustercheckOnly?: boolean;
  /** Never answer (a hung agent). */
  hang?: boolean;
  /** Answer garbage on /api/v1/status. */
  garbage?: boolean;
  /** Answer after this long (a slow agent). */
  delayMs?: number;
}

export interface TestAgent {
  url: string;
  port: number;
  answer: AgentAnswer;
  requests: number;
  set(answer: Partial<AgentAnswer>): void;
  close(): Promise<void>;
}

/** An HTTP health agent whose answer the test changes with `set`. */
export function startAgent(answer: AgentAnswer): Promise<TestAgent> {
  const agent = { answer, requests: 0 } as TestAgent;
  const server = http.createServer(async (req, res) => {
    agent.requests++;
    const a = agent.answer;
    if (a.hang) return; // keep the request open forever
    if (a.delayMs) await new Promise((r) => setTimeout(r, a.delayMs));
    if (req.url === "/api/v1/status") {
      if (a.clustercheckOnly) return res.writeHead(404).end("not found\n");
      if (a.garbage) {
        return res.writeHead(200, { "content-type": "application/json" }).end("{not json");
      }
      const body = JSON.stringify({
        healthy: a.healthy,
        wsrep_local_index: a.index ?? 0,
        wsrep_local_state: a.healthy ? 4 : 1,
        wsrep_local_state_comment: a.healthy ? "Synced" : "Joining",
      });
      return res.writeHead(a.healthy ? 200 : 503, { "content-type": "application/json" }).end(body);
    }
    res.writeHead(a.healthy ? 200 : 503).end(
      a.healthy ? "Galera node is synced\n" : "Galera node is not synced\n",
    );
  });
  server.keepAliveTimeout = 1000;
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      agent.port = (server.address() as net.AddressInfo).port;
      agent.url = `http://127.0.0.1:${agent.port}`;
      agent.set = (next) => (agent.answer = { ...agent.answer, ...next });
      agent.close = () =>
        new Promise<void>((done) => {
          server.close(() => done());
          server.closeAllConnections();
        });
      resolve(agent);
    });
  });
}

/** Waits until `check` returns a truthy value, polling; throws with `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | false | null | undefined | Promise<T | false | null | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value as T;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${last ? `: ${last}` : ""}`);
}

export interface Client {
  socket: net.Socket;
  /** Everything received so far. */
  readonly received: string;
  /** Resolves when the peer closed its side (FIN) or the socket closed. */
  readonly closed: Promise<void>;
  isClosed(): boolean;
  send(text: string): void;
  waitFor(text: string, timeoutMs?: number): Promise<string>;
}

/** Connects a raw TCP client and records what it receives. */
export function connectClient(port: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    let received = "";
    let closed = false;
    // The peer is done once it sent FIN (or the socket closed): a severed session shows as
    // either, depending on the runtime.
    const closedPromise = new Promise<void>((r) => {
      const done = () => {
        closed = true;
        r();
      };
      socket.once("end", done);
      socket.once("close", done);
    });
    socket.on("data", (chunk) => (received += chunk.toString("latin1")));
    socket.on("error", () => {});
    socket.once("connect", () =>
      resolve({
        socket,
        get received() {
          return received;
        },
        closed: closedPromise,
        isClosed: () => closed,
        send: (text) => socket.write(text),
        waitFor: (text, timeoutMs = 5000) =>
          waitFor<string>(
            `"${text}" from the proxy (got ${JSON.stringify(received)})`,
            () => received.includes(text) ? received : undefined,
            timeoutMs,
          ),
      }));
    socket.once("error", reject);
  });
}

/** Ports this process was given, so two asks before either is bound never get the same one. */
const given = new Set<number>();
/**
 * Ports are taken from below the kernel's ephemeral range (32768 and up on Linux): a port the
 * kernel handed out for listening on port 0 can be taken by any process's next outgoing
 * connection before the test binds it, and a tier of proxies probing agents makes many.
 */
const FIRST_PORT = 15_000;
/** Up to 22999: clear of the ports the Galera lab and the benchmarks fix (13306, 23306, 24610, …). */
const PORTS = 8000;
let next = FIRST_PORT + (process.pid * 7919) % PORTS;

/** Whether `port` binds now on 127.0.0.1 for TCP and for UDP (a peer port is UDP). */
async function bindable(port: number): Promise<boolean> {
  const tcp = await new Promise<boolean>((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
  if (!tcp) return false;
  return new Promise<boolean>((resolve) => {
    const socket = dgram.createSocket("udp4");
    socket.once("error", () => (socket.close(), resolve(false)));
    socket.bind(port, "127.0.0.1", () => socket.close(() => resolve(true)));
  });
}

/** A port free right now on 127.0.0.1 for TCP and UDP, outside the ephemeral range, never one given before here. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = next;
    next = FIRST_PORT + ((next - FIRST_PORT + 1) % PORTS);
    if (given.has(port) || !(await bindable(port))) continue;
    given.add(port);
    return port;
  }
}

/**
 * A datagram for floods: the peer wire's magic, version and a kind, so no receiver can drop it
 * at the first bytes, then junk its codec must refuse.
 */
export function peerJunk(size = 200): Uint8Array {
  const junk = new Uint8Array(size).fill(7);
  junk.set([...MAGIC, VERSION, 1], 0);
  return junk;
}

/**
 * Connects to a proxy's client port and returns what it says first (a node's greeting or the
 * proxy's error packet), then hangs up.
 */
export async function greeting(port: number): Promise<string> {
  const c = await connectClient(port);
  await waitFor("a greeting or an error", () => c.received.length > 0 || c.isClosed(), 5000);
  // A trailing close or error packet arrives with it or just after.
  await new Promise((r) => setTimeout(r, 20));
  c.socket.destroy();
  return c.received;
}
