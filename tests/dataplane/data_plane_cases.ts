/**
 * Cases for the data planes (src/dataplane/): the main-thread sockets and the epoll threads
 * must behave alike for everything the proxy does with a client. Run by `bun test`
 * (tests/dataplane/data_plane_test.ts) and `deno test` (tests/runtime/deno/).
 */
import assert from "node:assert/strict";
import net from "node:net";
import { openDataPlane } from "../../src/dataplane/open_data_plane.ts";
import type { ClientConn, DataPlaneKind } from "../../src/dataplane/plane.ts";
import type { SpliceStats } from "../../src/runtime/types.ts";
import { connectClient, startBackend, waitFor } from "../../scripts/lab/fixtures.ts";
import type { Case } from "../runtime/conformance.ts";

const OPTIONS = { timeoutMs: 1000, keepAliveMs: 0 };

export function dataPlaneCases(threads: number, kind: DataPlaneKind): Case[] {
  /** Listens on a fresh port; every accepted client is queued for the test to handle. */
  async function listen() {
    const plane = openDataPlane(threads, kind);
    const accepted: ClientConn[] = [];
    const listener = await plane.listen(
      { host: "127.0.0.1", port: 0 },
      { keepAliveMs: 0 },
      (conn) => accepted.push(conn),
    );
    const next = async (): Promise<ClientConn> => {
      await waitFor("an accepted client", () => accepted.length > 0);
      return accepted.shift()!;
    };
    // The plane asked for is the plane under test (epoll loads on Linux under Bun and Deno).
    assert.equal(plane.kind, kind === "auto" ? plane.kind : kind);
    return { plane, listener, next };
  }

  /** Connects `conn` to the backend; resolves with the stats when both sides closed. */
  async function forward(conn: ClientConn, port: number, stats: SpliceStats = { up: 0, down: 0 }) {
    let ended!: () => void;
    const done = new Promise<void>((resolve) => (ended = resolve));
    await conn.connect({ host: "127.0.0.1", port }, OPTIONS, { stats, ended });
    await done;
    return stats;
  }

  /** A splice watcher and a promise of its end. */
  function watched() {
    let ended!: () => void;
    const done = new Promise<void>((resolve) => (ended = resolve));
    return { watcher: { stats: { up: 0, down: 0 }, ended }, done };
  }

  return [
    [
      `${kind}, ${threads} thread(s): many clients spliced, bytes counted, live and at the end`,
      async () => {
        const backend = await startBackend("b");
        const { listener, next } = await listen();
        try {
          const clients = await Promise.all(
            Array.from({ length: 12 }, () => connectClient(listener.port)),
          );
          const sessions = [];
          const stats: SpliceStats[] = [];
          for (let i = 0; i < clients.length; i++) {
            const conn = await next();
            assert.equal(conn.remoteAddress.replace(/^::ffff:/, ""), "127.0.0.1");
            assert.equal(conn.localPort, listener.port);
            stats.push({ up: 0, down: 0 });
            sessions.push(forward(conn, backend.port, stats[i]));
          }
          for (const [i, c] of clients.entries()) {
            await c.waitFor("hello b\n");
            c.send(`ping ${i}|`.repeat(100));
            await c.waitFor(`ping ${i}|`.repeat(100));
          }
          const total = () => stats.reduce((n, s) => n + s.up, 0);
          const sent = clients.reduce((n, _, i) => n + `ping ${i}|`.repeat(100).length, 0);
          // Live counts arrive within about a second with threads, at once without.
          await waitFor("live byte counts", () => total() === sent, 5000);
          for (const c of clients) c.socket.end();
          await Promise.all(sessions);
          assert.equal(total(), sent);
          assert.equal(stats.reduce((n, s) => n + s.down, 0), sent + 8 * clients.length);
          await waitFor("backend sockets closed", () => backend.open === 0 || undefined);
        } finally {
          await listener.close();
          await backend.close();
        }
      },
    ],
    [`${kind}, ${threads} thread(s): destroy() severs client and backend at once`, async () => {
      const backend = await startBackend("b");
      const { plane, listener, next } = await listen();
      try {
        const client = await connectClient(listener.port);
        const conn = await next();
        const done = forward(conn, backend.port);
        await client.waitFor("hello b");
        conn.destroy();
        await client.closed;
        await done;
        await waitFor("backend socket closed", () => backend.open === 0 || undefined);
        // The epoll plane aborts the node side: a reset, so nothing still queued reaches it.
        if (plane.kind === "epoll") assert.equal(backend.resets, 1);
      } finally {
        await listener.close();
        await backend.close();
      }
    }],
    [`${kind}, ${threads} thread(s): endWith() delivers the packet, then closes`, async () => {
      const { listener, next } = await listen();
      try {
        const client = await connectClient(listener.port);
        const conn = await next();
        conn.endWith(new TextEncoder().encode("refused: no active node"));
        await client.waitFor("refused: no active node");
        await client.closed;
        await conn.closed;
      } finally {
        await listener.close();
      }
    }],
    [
      `${kind}, ${threads} thread(s): a failed dial names the target; the client can still be answered`,
      async () => {
        const { listener, next } = await listen();
        const dead = await new Promise<number>((resolve) => {
          const s = net.createServer().listen(0, "127.0.0.1", () => {
            const port = (s.address() as net.AddressInfo).port;
            s.close(() => resolve(port));
          });
        });
        try {
          const client = await connectClient(listener.port);
          const conn = await next();
          await assert.rejects(
            conn.connect({ host: "127.0.0.1", port: dead }, OPTIONS, watched().watcher),
            new RegExp(`connect to 127\\.0\\.0\\.1:${dead} failed`),
          );
          conn.endWith(new TextEncoder().encode("unreachable"));
          await client.waitFor("unreachable");
          await client.closed;
        } finally {
          await listener.close();
        }
      },
    ],
    [
      `${kind}, ${threads} thread(s): connect() splices at once, its header first, then what the client sent early`,
      async () => {
        const backend = await startBackend("b");
        const { listener, next } = await listen();
        try {
          const client = await connectClient(listener.port);
          const conn = await next();
          client.send("early|");
          const { watcher, done } = watched();
          await conn.connect(
            { host: "127.0.0.1", port: backend.port },
            { ...OPTIONS, header: new TextEncoder().encode("preamble|") },
            watcher,
          );
          await client.waitFor("hello b\npreamble|early|");
          client.send("late|");
          await client.waitFor("early|late|");
          client.socket.end();
          await done;
          assert.equal(watcher.stats.up, "early|late|".length);
        } finally {
          await listener.close();
          await backend.close();
        }
      },
    ],
    [
      `${kind}, ${threads} thread(s): cancel() while connecting fails it before a byte passes; the client can go elsewhere`,
      async () => {
        const old = await startBackend("old");
        const fresh = await startBackend("new");
        const { listener, next } = await listen();
        try {
          const client = await connectClient(listener.port);
          const conn = await next();
          const watcher = { stats: { up: 0, down: 0 }, ended: () => assert.fail("not spliced") };
          const first = conn.connect({ host: "127.0.0.1", port: old.port }, OPTIONS, watcher);
          conn.cancel();
          await assert.rejects(first, /cancelled/);
          await waitFor("old backend closed", () => old.open === 0 || undefined);
          const { watcher: second, done } = watched();
          await conn.connect({ host: "127.0.0.1", port: fresh.port }, OPTIONS, second);
          await client.waitFor("hello new");
          assert.ok(!client.received.includes("hello old"));
          client.socket.end();
          await done;
        } finally {
          await listener.close();
          await old.close();
          await fresh.close();
        }
      },
    ],
    [
      `${kind}, ${threads} thread(s): cancel() once connected ends the whole session`,
      async () => {
        const backend = await startBackend("b");
        const { listener, next } = await listen();
        try {
          const client = await connectClient(listener.port);
          const conn = await next();
          const { watcher, done } = watched();
          await conn.connect({ host: "127.0.0.1", port: backend.port }, OPTIONS, watcher);
          await client.waitFor("hello b");
          conn.cancel();
          await client.closed;
          await done;
          await waitFor("backend socket closed", () => backend.open === 0 || undefined);
        } finally {
          await listener.close();
          await backend.close();
        }
      },
    ],
    [`${kind}, ${threads} thread(s): a port in use fails to listen with EADDRINUSE`, async () => {
      const taken = net.createServer();
      const port = await new Promise<number>((resolve) =>
        taken.listen(0, "127.0.0.1", () => resolve((taken.address() as net.AddressInfo).port))
      );
      try {
        await assert.rejects(
          openDataPlane(threads).listen({ host: "127.0.0.1", port }, { keepAliveMs: 0 }, () => {}),
          (error: { code?: string; message?: string }) =>
            error.code === "EADDRINUSE" || /in use/i.test(error.message ?? ""),
        );
      } finally {
        await new Promise((r) => taken.close(r));
      }
    }],
    [`${kind}, ${threads} thread(s): close() stops accepting; open sessions go on`, async () => {
      const backend = await startBackend("b");
      const { listener, next } = await listen();
      const client = await connectClient(listener.port);
      const conn = await next();
      const done = forward(conn, backend.port);
      await client.waitFor("hello b");
      await listener.close();
      const refused = await new Promise<boolean>((resolve) => {
        const s = net.connect({ host: "127.0.0.1", port: listener.port });
        s.once("connect", () => (s.destroy(), resolve(false)));
        s.once("error", () => resolve(true));
      });
      assert.ok(refused, "a new connection after close() must be refused");
      client.send("still here");
      await client.waitFor("still here");
      client.socket.end();
      await done;
      await backend.close();
    }],
    [
      `${kind}, ${threads} thread(s): 8 MiB each way through a reader that stalls: intact, ` +
      `counted, half-close passed on`,
      async () => {
        const backend = await startBackend("b");
        const { listener, next } = await listen();
        try {
          const size = 8 * 1024 * 1024;
          const payload = new Uint8Array(size);
          for (let i = 0; i < size; i++) payload[i] = (i * 7 + (i >> 12)) & 0xff;
          const socket = net.connect({
            host: "127.0.0.1",
            port: listener.port,
            allowHalfOpen: true,
          });
          const chunks: Uint8Array[] = [];
          let got = 0;
          const ended = new Promise<void>((resolve) => socket.once("end", () => resolve()));
          socket.on("data", (chunk: Uint8Array) => {
            chunks.push(chunk);
            // A slow reader throughout: the proxy's writes to it keep coming back partial, up
            // to the last bytes, which arrive from the backend with its FIN.
            if (Math.floor(got / 262144) !== Math.floor((got + chunk.length) / 262144)) {
              socket.pause();
              setTimeout(() => socket.resume(), 5);
            }
            got += chunk.length;
          });
          // Not reading for a while: the echo backs up through the proxy into the backend.
          socket.pause();
          const stats = { up: 0, down: 0 };
          const session = forward(await next(), backend.port, stats);
          socket.end(payload);
          await new Promise((r) => setTimeout(r, 500));
          socket.resume();
          await ended; // the backend ends after our FIN: the FIN crossed both ways
          const hello = new TextEncoder().encode("hello b\n");
          const all = Buffer.concat(chunks);
          assert.equal(got, hello.length + size);
          assert.ok(Buffer.from(all.subarray(0, hello.length)).equals(Buffer.from(hello)));
          assert.ok(Buffer.from(all.subarray(hello.length)).equals(Buffer.from(payload)));
          socket.destroy();
          await session;
          assert.deepEqual(stats, { up: size, down: hello.length + size });
        } finally {
          await listener.close();
          await backend.close();
        }
      },
    ],
    [
      `${kind}, ${threads} thread(s): close() while the last sessions end still completes`,
      async () => {
        const backend = await startBackend("b");
        const { listener, next } = await listen();
        const clients = await Promise.all([1, 2, 3, 4].map(() => connectClient(listener.port)));
        const done = [];
        for (const _ of clients) done.push(forward(await next(), backend.port));
        for (const c of clients) await c.waitFor("hello b");
        // The sessions' "closed" reports cross the stop request on the way.
        for (const c of clients) c.socket.destroy();
        await new Promise((r) => setTimeout(r, 1));
        const closing = listener.close().then(() => true);
        const timeout = new Promise((r) => setTimeout(() => r(false), 5000));
        assert.ok(await Promise.race([closing, timeout]), "close() did not complete");
        await Promise.all(done);
        await backend.close();
      },
    ],
  ];
}

/**
 * `--threads auto` (core/threads.ts): epoll threads are added while they are in demand, never
 * while idle, and a thread added later takes its share of new clients like the others.
 */
export function threadGrowthCases(): Case[] {
  async function growing(windowMs: number) {
    const backend = await startBackend("b");
    const plane = openDataPlane(1, "epoll", { max: 2, windowMs });
    const sessions: Promise<SpliceStats>[] = [];
    const forwardAll = async (conn: ClientConn) => {
      const stats = { up: 0, down: 0 };
      let ended!: () => void;
      const done = new Promise<void>((resolve) => (ended = resolve));
      await conn.connect({ host: "127.0.0.1", port: backend.port }, OPTIONS, { stats, ended });
      await done;
      return stats;
    };
    const listener = await plane.listen(
      { host: "127.0.0.1", port: 0 },
      { keepAliveMs: 0 },
      (conn) => sessions.push(forwardAll(conn)),
    );
    assert.equal(plane.kind, "epoll");
    assert.equal(plane.threads, 1);
    const close = async () => {
      await listener.close();
      await backend.close();
      await Promise.allSettled(sessions);
    };
    return { plane, listener, close };
  }

  return [
    ["epoll, auto: a busy thread gets a second one; new clients are still served", async () => {
      const { plane, listener, close } = await growing(250);
      try {
        // Two clients push 64 KiB writes through the echo backend as fast as it takes them.
        const chunk = new Uint8Array(65536).fill(7);
        let pumping = true;
        const pumps = [1, 2].map(() => {
          const socket = net.connect({ host: "127.0.0.1", port: listener.port });
          socket.on("data", () => {});
          socket.on("error", () => {});
          const pump = () => {
            while (pumping && socket.write(chunk));
          };
          socket.on("drain", pump);
          socket.once("connect", pump);
          return socket;
        });
        await waitFor("a second data-plane thread", () => plane.threads === 2, 20_000);
        pumping = false;
        for (const socket of pumps) socket.destroy();
        const clients = await Promise.all(
          Array.from({ length: 16 }, () => connectClient(listener.port)),
        );
        for (const client of clients) {
          await client.waitFor("hello b");
          client.send("after growth\n");
          await client.waitFor("after growth");
          client.socket.destroy();
        }
      } finally {
        await close();
      }
    }],
    ["epoll, auto: an idle plane stays at its threads", async () => {
      const { plane, listener, close } = await growing(100);
      try {
        const client = await connectClient(listener.port);
        await client.waitFor("hello b");
        await new Promise((r) => setTimeout(r, 1000));
        assert.equal(plane.threads, 1);
        client.socket.destroy();
      } finally {
        await close();
      }
    }],
  ];
}
