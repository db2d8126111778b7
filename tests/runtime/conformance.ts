/**
 * One conformance suite for every runtime adapter behind `#runtime`: run by `bun test`
 * (tests/runtime/transport_test.ts) and by `deno test` (tests/runtime/deno/). Runner-agnostic:
 * each case is a name and an async function that throws on failure.
 */
import assert from "node:assert/strict";
import net from "node:net";
import * as defaultRuntime from "#runtime";
import { probeAgent } from "../../src/proxy/probe.ts";
import type { SpliceStats, TcpConn } from "../../src/runtime/types.ts";
import { connectClient, startBackend, waitFor } from "../../scripts/lab/fixtures.ts";

export type Case = [name: string, run: () => Promise<void>];

/** What every adapter exports. */
export type Runtime = typeof defaultRuntime;

/** The conformance cases for one adapter (the one `#runtime` resolves to by default). */
export function conformance(runtime: Runtime = defaultRuntime): Case[] {
  const { bindUdp, connectTcp, listenTcp, serveHttp, splice } = runtime;

  /** A one-backend proxy made of the adapter's own primitives. */
  async function miniProxy(backendPort: number) {
    const stats: SpliceStats = { up: 0, down: 0 };
    const conns: TcpConn[] = [];
    const done: Promise<void>[] = [];
    const listener = await listenTcp(
      { host: "127.0.0.1", port: 0 },
      { keepAliveMs: 1000 },
      (client) => {
        conns.push(client);
        done.push(
          connectTcp({ host: "127.0.0.1", port: backendPort }, {
            timeoutMs: 1000,
            keepAliveMs: 1000,
          })
            .then((server) => {
              conns.push(server);
              return splice(client, server, stats);
            }),
        );
      },
    );
    return { listener, stats, conns, done };
  }

  return [
    ["splice passes bytes both ways and counts them", async () => {
      const backend = await startBackend("b");
      const p = await miniProxy(backend.port);
      try {
        const client = await connectClient(p.listener.port);
        await client.waitFor("hello b\n");
        client.send("x".repeat(1000));
        await client.waitFor("x".repeat(1000));
        assert.equal(p.stats.up, 1000);
        assert.equal(p.stats.down, 1008);
        client.socket.destroy();
        await Promise.all(p.done);
        await waitFor("backend socket closed", () => backend.open === 0);
      } finally {
        await p.listener.close();
        await backend.close();
      }
    }],
    ["half-close: the reply after the client's FIN arrives, then both close", async () => {
      const backend = await startBackend("b");
      const p = await miniProxy(backend.port);
      try {
        const client = await connectClient(p.listener.port);
        await client.waitFor("hello b");
        client.socket.end("bye");
        await client.waitFor("bye");
        await client.closed;
        await Promise.all(p.done);
      } finally {
        await p.listener.close();
        await backend.close();
      }
    }],
    ["destroy() of one side closes both", async () => {
      const backend = await startBackend("b");
      const p = await miniProxy(backend.port);
      try {
        const client = await connectClient(p.listener.port);
        await client.waitFor("hello b");
        await waitFor("both conns", () => p.conns.length === 2);
        p.conns[1].destroy();
        await client.closed;
        await Promise.all(p.done);
        await waitFor("backend socket closed", () => backend.open === 0);
      } finally {
        await p.listener.close();
        await backend.close();
      }
    }],
    ["4 MiB passes intact to a client that reads slowly", async () => {
      const size = 4 * 1024 * 1024;
      const server = net.createServer((s) => {
        const block = Buffer.alloc(64 * 1024);
        for (let i = 0; i < block.length; i++) block[i] = i % 251;
        let sent = 0;
        const write = () => {
          while (sent < size) {
            sent += block.length;
            if (!s.write(block)) return void s.once("drain", write);
          }
          s.end();
        };
        write();
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
      const p = await miniProxy((server.address() as net.AddressInfo).port);
      try {
        const sock = net.connect(p.listener.port, "127.0.0.1");
        let received = 0;
        let ok = true;
        sock.on("data", (chunk: Buffer) => {
          for (let i = 0; i < chunk.length; i += 997) {
            if (chunk[i] !== ((received + i) % (64 * 1024)) % 251) ok = false;
          }
          received += chunk.length;
          sock.pause();
          setTimeout(() => sock.resume(), 1);
        });
        await new Promise((r) => sock.on("end", r));
        sock.destroy();
        assert.equal(received, size);
        assert.ok(ok, "bytes arrived out of order or corrupted");
      } finally {
        await p.listener.close();
        server.close();
      }
    }],
    ["connectTcp to a closed port fails with a message naming it", async () => {
      const probe = net.createServer();
      await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
      const port = (probe.address() as net.AddressInfo).port;
      await new Promise((r) => probe.close(r));
      await assert.rejects(
        connectTcp({ host: "127.0.0.1", port }, { timeoutMs: 1000, keepAliveMs: 0 }),
        (e: Error) => e.message.startsWith(`connect to 127.0.0.1:${port} failed`),
      );
    }],
    ["endWith() delivers its bytes, then closes", async () => {
      const listener = await listenTcp(
        { host: "127.0.0.1", port: 0 },
        { keepAliveMs: 0 },
        (c) => c.endWith(new TextEncoder().encode("refused")),
      );
      try {
        const client = await connectClient(listener.port);
        await client.closed;
        assert.equal(client.received, "refused");
      } finally {
        await listener.close();
      }
    }],
    ["a closed listener refuses new connections", async () => {
      const listener = await listenTcp(
        { host: "127.0.0.1", port: 0 },
        { keepAliveMs: 0 },
        (c) => c.destroy(),
      );
      await listener.close();
      await assert.rejects(connectClient(listener.port));
    }],
    ["serveHttp answers with the handler's Response and closes", async () => {
      const server = await serveHttp(
        { host: "127.0.0.1", port: 0 },
        (req) => new Response(`you asked ${new URL(req.url).pathname}`, { status: 203 }),
      );
      try {
        const res = await fetch(`http://127.0.0.1:${server.port}/x`);
        assert.equal(res.status, 203);
        assert.equal(await res.text(), "you asked /x");
        // HTTP/1.0 without a Host header, as load balancers' health checks send it: the
        // handler still sees an absolute URL with the path asked for.
        const text = await new Promise<string>((resolve, reject) => {
          let out = "";
          const socket = net.connect(
            server.port,
            "127.0.0.1",
            () => socket.write("GET /ready HTTP/1.0\r\n\r\n"),
          );
          socket.on("data", (d) => (out += d));
          socket.on("end", () => resolve(out));
          socket.on("error", reject);
        });
        assert.ok(text.endsWith("you asked /ready"), `answer: ${JSON.stringify(text)}`);
      } finally {
        await server.close();
      }
    }],
    ["a health probe names a refused agent's error and gives up on a silent one", async () => {
      // The runtime's fetch under probeAgent: each runtime reports failures its own way.
      const closed = net.createServer();
      await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
      const port = (closed.address() as net.AddressInfo).port;
      await new Promise((r) => closed.close(r));
      const refused = await probeAgent(`http://127.0.0.1:${port}`, { statusApi: true }, 2000);
      assert.equal(refused.ok, false);
      assert.match(refused.reason, /^agent unreachable: ECONNREFUSED \(/);

      const sockets: net.Socket[] = [];
      let closes = 0;
      const silent = net.createServer((socket) => {
        sockets.push(socket);
        socket.on("close", () => closes++).on("error", () => {}).resume();
      });
      await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
      const started = performance.now();
      const silence = await probeAgent(
        `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`,
        { statusApi: true },
        150,
      );
      const waited = performance.now() - started;
      try {
        assert.equal(silence.reason, "agent did not answer within 150ms");
        assert.ok(waited >= 140 && waited < 1500, `gave up after ${waited}ms`);
        await waitFor(
          "the silent agent's connection closed",
          () => sockets.length > 0 && closes === sockets.length,
        );
      } finally {
        for (const s of sockets) s.destroy();
        silent.close();
      }
    }],
    ["bindUdp sends and receives datagrams with the sender's address", async () => {
      const got: { data: string; port: number }[] = [];
      const a = await bindUdp(
        { host: "127.0.0.1", port: 0 },
        (data, from) => got.push({ data: new TextDecoder().decode(data), port: from.port }),
      );
      const b = await bindUdp({ host: "127.0.0.1", port: 0 }, () => {});
      try {
        b.send(new TextEncoder().encode("gossip"), { host: "127.0.0.1", port: a.port });
        await waitFor("a datagram", () => got.length === 1);
        assert.deepEqual(got[0], { data: "gossip", port: b.port });
      } finally {
        a.close();
        b.close();
      }
    }],
  ];
}
