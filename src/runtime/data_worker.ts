/**
 * One data-plane thread (a Worker started by data_plane.ts). It listens on the proxy port with
 * SO_REUSEPORT, so the kernel spreads new clients over the threads, and runs the runtime's own
 * sockets and splice for the sessions it accepted. It decides nothing: every new client is
 * announced to the main thread, which answers with what to do (dial a node and splice, send an
 * error packet, close). Nothing crosses threads per packet; byte counts are reported once a
 * second for sessions that moved data, and in full when a session closes.
 */
import { connectTcp, listenTcp, splice } from "#runtime";
import type { SpliceStats, TcpConn, TcpListener } from "./types.ts";
import type { FromWorker, ToWorker } from "./data_messages.ts";

interface WorkerSession {
  client: TcpConn;
  server: TcpConn | null;
  stats: SpliceStats;
  reportedUp: number;
  reportedDown: number;
  spliced: boolean;
}

const scope = globalThis as unknown as {
  postMessage(message: FromWorker): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
};
const post = (message: FromWorker) => scope.postMessage(message);
const sessions = new Map<number, WorkerSession>();
let listener: TcpListener | null = null;
let nextId = 1;

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function finish(id: number): void {
  const s = sessions.get(id);
  if (!s) return;
  sessions.delete(id);
  s.server?.destroy();
  post(["closed", id, s.stats.up, s.stats.down]);
}

function accept(client: TcpConn): void {
  const id = nextId++;
  const session: WorkerSession = {
    client,
    server: null,
    stats: { up: 0, down: 0 },
    reportedUp: 0,
    reportedDown: 0,
    spliced: false,
  };
  sessions.set(id, session);
  post([
    "open",
    id,
    client.remoteAddress,
    client.remotePort,
    client.localAddress,
    client.localPort,
  ]);
  client.closed.then(() => {
    if (!session.spliced) finish(id);
  });
}

function reportBytes(): void {
  const changed: number[] = [];
  for (const [id, s] of sessions) {
    if (s.stats.up === s.reportedUp && s.stats.down === s.reportedDown) continue;
    s.reportedUp = s.stats.up;
    s.reportedDown = s.stats.down;
    changed.push(id, s.stats.up, s.stats.down);
  }
  if (changed.length > 0) post(["bytes", changed]);
}

async function handle(message: ToWorker): Promise<void> {
  switch (message[0]) {
    case "listen": {
      const [, host, port, keepAliveMs] = message;
      try {
        listener = await listenTcp({ host, port }, { keepAliveMs, reusePort: true }, accept);
        post(["listening", listener.port]);
        setInterval(reportBytes, 1000);
      } catch (error) {
        post(["listenFailed", reason(error), (error as { code?: string }).code ?? ""]);
      }
      return;
    }
    case "stop":
      await listener?.close();
      listener = null;
      post(["stopped"]);
      return;
    case "dial": {
      const [, request, id, host, port, timeoutMs, keepAliveMs] = message;
      const s = sessions.get(id);
      if (!s) return post(["failed", request, "client closed"]);
      try {
        const server = await connectTcp({ host, port }, { timeoutMs, keepAliveMs });
        if (sessions.get(id) !== s) {
          server.destroy();
          return post(["failed", request, "client closed"]);
        }
        s.server = server;
        post(["done", request]);
      } catch (error) {
        post(["failed", request, reason(error)]);
      }
      return;
    }
    case "write": {
      const [, request, id, side, data] = message;
      const s = sessions.get(id);
      const conn = side === "client" ? s?.client : s?.server;
      if (!conn) return post(["failed", request, "connection closed"]);
      try {
        await conn.write(data);
        post(["done", request]);
      } catch (error) {
        post(["failed", request, reason(error)]);
      }
      return;
    }
    case "endWith": {
      const [, id, data] = message;
      sessions.get(id)?.client.endWith(data);
      return;
    }
    case "destroyMany": {
      for (const [id, side] of message[1]) await handle(["destroy", id, side]);
      return;
    }
    case "destroy": {
      const [, id, side] = message;
      const s = sessions.get(id);
      if (!s) return;
      if (side === "server") {
        s.server?.destroy();
        s.server = null;
        return;
      }
      s.client.destroy();
      s.server?.destroy();
      return;
    }
    case "splice": {
      const [, id] = message;
      const s = sessions.get(id);
      if (!s) return;
      if (!s.server) {
        s.client.destroy();
        return;
      }
      s.spliced = true;
      await splice(s.client, s.server, s.stats);
      finish(id);
      return;
    }
  }
}

scope.onmessage = (event) => {
  handle(event.data).catch((error) => post(["fault", reason(error)]));
};
