/**
 * The scale bench's storm client (scripts/bench/storm_client.ts) counts what it sees: greetings
 * with and without the expected node, closes before a greeting, refusals, and clients nobody
 * answers, each once, and closes every socket it made.
 */
import { afterAll, describe, expect, test } from "bun:test";
import net from "node:net";
import { startStormClient } from "../../scripts/bench/storm_client.ts";

const servers: net.Server[] = [];
const client = await startStormClient();
afterAll(() => {
  client.close();
  for (const s of servers) s.close();
});

/** A server that answers its i-th connection with `answer(i)`: a greeting, "close" or "silent". */
function serve(answer: (i: number) => string): Promise<{ port: number; open: () => number }> {
  const sockets = new Set<net.Socket>();
  let i = 0;
  const server = net.createServer((s) => {
    s.on("error", () => {});
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
    const what = answer(i++);
    if (what === "close") s.end();
    else if (what !== "silent") s.write(what);
  });
  servers.push(server);
  return new Promise((resolve) =>
    server.listen(
      0,
      "127.0.0.1",
      () => resolve({ port: (server.address() as net.AddressInfo).port, open: () => sockets.size }),
    )
  );
}

describe("storm client", () => {
  test("counts greetings, other nodes' greetings and closes, each once", async () => {
    const { port, open } = await serve((i) =>
      i % 10 === 0 ? "close" : i % 10 === 1 ? "hello db0\n" : "hello db1\n"
    );
    const r = await client.storm({ port, n: 300, expect: "hello db1", limitMs: 10_000 });
    expect(r.servedAt).toHaveLength(270);
    expect(r.wrongNode).toBe(30);
    expect(r.why).toEqual({ closed: 30 });
    expect(r.stuck).toBe(0);
    expect(r.servedAt.every((t, k) => t >= 0 && (k === 0 || t >= r.servedAt[k - 1]))).toBe(true);
    // Every client is closed once the answer is out.
    for (let k = 0; k < 50 && open() > 0; k++) await Bun.sleep(20);
    expect(open()).toBe(0);
  });

  test("a port nobody listens on: every client refused", async () => {
    const { port } = await serve(() => "silent");
    servers.pop()!.close();
    await Bun.sleep(50);
    const r = await client.storm({ port, n: 20, expect: "hello", limitMs: 5000 });
    expect(r.servedAt).toHaveLength(0);
    expect(r.why).toEqual({ ECONNREFUSED: 20 });
  });

  test("clients nobody answers are stuck at the limit, not counted as failed", async () => {
    const { port, open } = await serve(() => "silent");
    const started = performance.now();
    const r = await client.storm({ port, n: 10, expect: "hello", limitMs: 300 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(300);
    expect(r).toEqual({ servedAt: [], why: {}, wrongNode: 0, stuck: 10 });
    for (let k = 0; k < 50 && open() > 0; k++) await Bun.sleep(20);
    expect(open()).toBe(0);
  });
});
