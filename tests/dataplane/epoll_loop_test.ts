/**
 * The epoll loop in-process over a fake libc (fake_libc.ts): every path of a session, driven
 * turn by turn with a clock the test moves. The same loop runs on real sockets in
 * data_plane_test.ts.
 */
import { describe, expect, test } from "bun:test";
import { GATED_FROM } from "../../src/dataplane/sever_gate.ts";
import { EpollLoop } from "../../src/dataplane/epoll_loop.ts";
import type { FromWorker } from "../../src/dataplane/messages.ts";
import { FakeLibc, type Outside } from "./fake_libc.ts";

const LISTEN = 3306;

/** The ids of `sessions`, as a destroyMany carries them. */
const ids = (sessions: { id: number }[]) => Float64Array.from(sessions.map((s) => s.id));
const NODE = 4000;

function setup(severed?: () => void) {
  const libc = new FakeLibc();
  const posted: FromWorker[] = [];
  let clock = 1000;
  let released = 0;
  let collected = 0;
  // A turn's messages come as one batch; the tests read them one by one.
  const loop = new EpollLoop(
    libc,
    (m) => m[0] === "batch" ? posted.push(...m[1]) : posted.push(m),
    {
      arch: libc.arch,
      now: () => clock,
      releaseMemory: () => released++,
      collectGarbage: () => collected++,
      severed,
    },
  );
  const nodes = libc.serve(NODE);
  loop.handle(["listen", "127.0.0.1", LISTEN, 0]);
  expect(posted.shift()?.[0]).toBe("listening");

  /** Turns until nothing more happens. */
  const spin = (turns = 20) => {
    for (let i = 0; i < turns; i++) loop.turn(0);
  };
  const take = (kind: FromWorker[0]) => {
    const at = posted.findIndex((m) => m[0] === kind);
    return at < 0 ? undefined : posted.splice(at, 1)[0];
  };
  let request = 1;
  /** A client accepted and its node dialled, which splices them; returns both outside ends. */
  const session = (): { id: number; client: Outside; node: Outside } => {
    const client = libc.clientTo(LISTEN);
    spin();
    const open = take("open") as ["open", number, ...unknown[]];
    expect(open).toBeDefined();
    const id = open[1];
    const r = request++;
    loop.handle(["dial", r, id, "127.0.0.1", NODE, 1000, 0]);
    spin();
    expect(take("done")).toEqual(["done", r]);
    return { id, client, node: nodes.at(-1)! };
  };
  return {
    libc,
    loop,
    posted,
    spin,
    take,
    session,
    nodes,
    advance: (ms: number) => (clock += ms),
    memory: () => ({ released, collected }),
  };
}

describe("epoll loop (fake libc)", () => {
  test("a session carries bytes both ways; FINs pass on; the close reports its counts", () => {
    const t = setup();
    const { id, client, node } = t.session();
    client.write("SELECT 1");
    t.spin();
    expect(node.take()).toBe("SELECT 1");
    node.write("row!");
    t.spin();
    expect(client.take()).toBe("row!");
    client.end();
    t.spin();
    expect(node.ended).toBe(true);
    expect(t.take("closed")).toBeUndefined(); // the node's direction is still open
    node.write("late");
    node.end();
    t.spin();
    expect(client.take()).toBe("late");
    expect(t.take("closed")).toEqual(["closed", [id, 8, 8]]);
    expect(t.loop.sessions).toBe(0);
  });

  test("a session costs three epoll_ctl calls from accept to splice: one for each socket, one at the splice", () => {
    const t = setup();
    const before = { ...t.libc.ctlCalls };
    const { client, node } = t.session();
    // The client is watched for reading from its accept; the node's connect is watched once.
    expect(t.libc.ctlCalls).toEqual({ add: before.add + 2, mod: before.mod + 1, del: before.del });
    node.write("greeting");
    t.spin();
    expect(client.take()).toBe("greeting");
    client.write("query");
    t.spin();
    expect(node.take()).toBe("query");
  });

  test("a client that writes before its node is connected is not read, nor woken for, until then", () => {
    const t = setup();
    const client = t.libc.clientTo(LISTEN);
    t.spin();
    const [, id] = t.take("open") as ["open", number];
    client.write("early");
    t.spin();
    const mods = t.libc.ctlCalls.mod;
    t.spin();
    expect(t.libc.ctlCalls.mod).toBe(mods); // not reported again on every turn
    expect(client.unread).toBe(5);
    t.loop.handle(["dial", 99, id, "127.0.0.1", NODE, 1000, 0]);
    t.spin();
    expect(t.take("done")).toEqual(["done", 99]);
    expect(t.nodes.at(-1)!.take()).toBe("early");
  });

  test("byte counts of busy sessions are reported once a second, only when they moved", () => {
    const t = setup();
    const { id, client } = t.session();
    client.write("abc");
    t.spin();
    expect(t.take("bytes")).toBeUndefined();
    t.advance(1000);
    t.spin();
    expect(t.take("bytes")).toEqual(["bytes", [id, 3, 0]]);
    t.advance(1000);
    t.spin();
    expect(t.take("bytes")).toBeUndefined();
  });

  test("a slow reader: the rest is queued, the writer paused, and all of it arrives in order", () => {
    const t = setup();
    const { client, node } = t.session();
    node.side.capacity = 1000;
    const sent = new Uint8Array(10_000).map((_, i) => i % 251);
    client.write(sent.subarray(0, 5000));
    t.spin();
    client.write(sent.subarray(5000));
    t.spin();
    expect(node.side.buffered).toBe(1000);
    // Paused: the second write stays with the client's socket until the node drains.
    expect(client.unread).toBe(5000);
    const got: Uint8Array[] = [];
    for (let i = 0; i < 20 && got.reduce((n, c) => n + c.length, 0) < sent.length; i++) {
      got.push(node.takeBytes());
      t.spin(2);
    }
    const all = new Uint8Array(got.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of got) {
      all.set(c, at);
      at += c.length;
    }
    expect(all).toEqual(sent);
  });

  test("a refused dial names the target, and the client can still be answered", () => {
    const t = setup();
    const client = t.libc.clientTo(LISTEN);
    t.spin();
    const [, id] = t.take("open") as ["open", number];
    t.loop.handle(["dial", 7, id, "127.0.0.1", 4999, 1000, 0]);
    t.spin();
    expect(t.take("failed")).toEqual([
      "failed",
      7,
      "connect to 127.0.0.1:4999 failed: ECONNREFUSED",
    ]);
    t.loop.handle(["endWith", id, new TextEncoder().encode("ERR no node")]);
    t.spin();
    expect(client.take()).toBe("ERR no node");
    expect(client.closedByLoop).toBe(true);
    expect((t.take("closed") as ["closed", number[]])[1][0]).toBe(id);
  });

  test("a dial that never completes times out on the loop's clock", () => {
    const t = setup();
    t.libc.silent.add(4555);
    t.libc.clientTo(LISTEN);
    t.spin();
    const [, id] = t.take("open") as ["open", number];
    t.loop.handle(["dial", 9, id, "127.0.0.1", 4555, 1000, 0]);
    t.spin();
    expect(t.loop.timeout()).toBe(1000);
    t.advance(999);
    t.spin();
    expect(t.take("failed")).toBeUndefined();
    t.advance(1);
    t.spin();
    expect(t.take("failed")).toEqual([
      "failed",
      9,
      "connect to 127.0.0.1:4555 timed out after 1000ms",
    ]);
  });

  test("connects a node has not answered are bounded; the rest start as answers come", () => {
    const t = setup();
    const opened = () => {
      t.libc.clientTo(LISTEN);
      t.spin();
      return (t.take("open") as ["open", number])[1];
    };
    const ids = [opened(), opened(), opened(), opened()];
    ids.forEach((id, i) => t.loop.handle(["dial", 10 + i, id, "127.0.0.1", NODE, 1000, 0, 2]));
    t.spin();
    const done = () => t.posted.filter((m) => m[0] === "done").map((m) => m[1]);
    expect(done()).toEqual([10, 11]);
    expect(t.nodes.length).toBe(2);
    // Connected is not answered: only the node's first byte frees a slot.
    expect(t.nodes.length).toBe(2);
    t.nodes[0].write("greeting");
    t.spin();
    expect(done()).toEqual([10, 11, 12]);
    // A node that closes before it answers frees its slot too.
    t.nodes[1].close();
    t.spin();
    expect(done()).toEqual([10, 11, 12, 13]);
    expect(t.nodes.length).toBe(4);
  });

  test("a dial waiting for a slot times out saying so; a client gone while waiting frees it", () => {
    const t = setup();
    const opened = () => {
      t.libc.clientTo(LISTEN);
      t.spin();
      return (t.take("open") as ["open", number])[1];
    };
    const [a, b, c] = [opened(), opened(), opened()];
    t.loop.handle(["dial", 1, a, "127.0.0.1", NODE, 1000, 0, 1]);
    t.loop.handle(["dial", 2, b, "127.0.0.1", NODE, 1000, 0, 1]);
    t.advance(500);
    t.loop.handle(["dial", 3, c, "127.0.0.1", NODE, 1000, 0, 1]);
    t.spin();
    expect(t.take("done")).toEqual(["done", 1]);
    t.advance(500);
    t.spin();
    expect(t.take("failed")).toEqual([
      "failed",
      2,
      "connect to 127.0.0.1:4000 timed out after 1000ms (waiting behind 1 unanswered connects)",
    ]);
    t.loop.handle(["destroy", c, "client"]);
    t.spin();
    expect(t.take("failed")).toEqual(["failed", 3, "client closed"]);
    expect(t.nodes.length).toBe(1);
    // Without a limit nothing waits.
    const more = [opened(), opened(), opened()];
    more.forEach((id, i) => t.loop.handle(["dial", 20 + i, id, "127.0.0.1", NODE, 1000, 0, 0]));
    t.spin();
    expect(t.posted.filter((m) => m[0] === "done").map((m) => m[1])).toEqual([20, 21, 22]);
  });

  test("destroyMany severs every session it names at once, idle ones included, in one report", () => {
    const t = setup();
    const sessions = [t.session(), t.session(), t.session()];
    const open = t.libc.open;
    t.loop.handle(["destroyMany", ids(sessions.slice(0, 2)), ids([])]);
    for (const s of sessions.slice(0, 2)) {
      expect(s.client.closedByLoop).toBe(true);
      expect(s.node.closedByLoop).toBe(true);
    }
    expect(sessions[2].client.closedByLoop).toBe(false);
    expect(t.libc.open).toBe(open - 4);
    const closed = t.posted.filter((m) => m[0] === "closed");
    expect(closed).toEqual([["closed", sessions.slice(0, 2).flatMap((s) => [s.id, 0, 0])]]);
  });

  test("a destroy of one session resets its node side, as a sever of many does", () => {
    const t = setup();
    const [one, other] = [t.session(), t.session()];
    t.loop.handle(["destroy", one.id, "client"]);
    expect(one.node.resetByLoop && one.node.closedByLoop && one.client.closedByLoop).toBe(true);
    expect(other.node.cutByLoop || other.client.cutByLoop).toBe(false);
  });

  test("a sever resets every node side and reports the sessions ended before closing clients", () => {
    const t = setup();
    const sessions = [t.session(), t.session()];
    // What was closed at the moment the loop told the main thread the sessions had ended.
    let atReport: { nodes: boolean[]; clients: boolean[] } | null = null;
    const push = t.posted.push.bind(t.posted);
    t.posted.push = (...items: FromWorker[]) => {
      if (items.some((m) => m[0] === "closed")) {
        atReport = {
          nodes: sessions.map((s) => s.node.resetByLoop && s.node.ended),
          clients: sessions.map((s) => s.client.cutByLoop),
        };
      }
      return push(...items);
    };
    t.loop.handle(["destroyMany", ids(sessions), ids([])]);
    expect(atReport).toEqual({ nodes: [true, true], clients: [false, false] });
    expect(sessions.every((s) => s.client.closedByLoop && s.node.closedByLoop)).toBe(true);
    // Reported once each, though the clients closed after the report.
    const closed = t.posted.filter((m) => m[0] === "closed");
    expect(closed).toEqual([["closed", sessions.flatMap((s) => [s.id, 0, 0])]]);
    t.spin();
    expect(t.posted.filter((m) => m[0] === "closed")).toHaveLength(1);
  });

  test("a large sever waits at its gate once every node side is cut, before any client is closed", () => {
    const seen: { nodesCut: boolean; clientsCut: number }[] = [];
    let sessions: ReturnType<ReturnType<typeof setup>["session"]>[] = [];
    const t = setup(() =>
      seen.push({
        nodesCut: sessions.every((s) => s.node.resetByLoop),
        clientsCut: sessions.filter((s) => s.client.cutByLoop).length,
      })
    );
    sessions = Array.from({ length: GATED_FROM + 3 }, () => t.session());
    // A few sessions ended together do not pass it (nor does the main thread count them in).
    t.loop.handle(["destroyMany", ids(sessions.slice(0, 3)), ids([])]);
    expect(seen).toEqual([]);
    sessions = sessions.slice(3);
    t.loop.handle(["destroyMany", ids(sessions), ids([])]);
    expect(seen).toEqual([{ nodesCut: true, clientsCut: 0 }]);
    expect(sessions.every((s) => s.client.closedByLoop)).toBe(true);
  });

  test("a large sever reports in parts, each session once, each cut from its node when reported", () => {
    const t = setup();
    const sessions = Array.from({ length: 1100 }, () => t.session());
    const byId = new Map(sessions.map((s) => [s.id, s]));
    const parts: number[] = [];
    const push = t.posted.push.bind(t.posted);
    t.posted.push = (...items: FromWorker[]) => {
      for (const m of items.flatMap((m) => m[0] === "batch" ? m[1] : [m])) {
        if (m[0] !== "closed") continue;
        const ids = m[1].filter((_, i) => i % 3 === 0);
        for (const id of ids) expect(byId.get(id)!.node.cutByLoop).toBe(true);
        parts.push(ids.length);
      }
      return push(...items);
    };
    t.loop.handle(["destroyMany", ids(sessions), ids([])]);
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.reduce((a, b) => a + b, 0)).toBe(sessions.length);
    expect(sessions.every((s) => s.client.closedByLoop && s.node.closedByLoop)).toBe(true);
  });

  test("bytes and a FIN sent while the node is dialled are passed on once it connects, after the header", () => {
    const t = setup();
    const client = t.libc.clientTo(LISTEN);
    t.spin();
    const [, id] = t.take("open") as ["open", number];
    client.write("early");
    client.end();
    t.spin();
    const header = new TextEncoder().encode("PROXY|");
    t.loop.handle(["dial", 3, id, "127.0.0.1", NODE, 1000, 0, 0, header]);
    t.spin();
    expect(t.take("done")).toEqual(["done", 3]);
    const node = t.nodes.at(-1)!;
    expect(node.take()).toBe("PROXY|early");
    expect(node.ended).toBe(true);
  });

  test("out of descriptors: accepting pauses, says so once, and resumes", () => {
    const t = setup();
    t.libc.failAccepts = 1;
    t.libc.clientTo(LISTEN);
    t.spin();
    expect(t.take("fault")).toEqual(["fault", "accept failed: EMFILE; pausing 200 ms"]);
    expect(t.take("fault")).toBeUndefined();
    expect(t.take("open")).toBeUndefined();
    t.advance(200);
    t.spin();
    expect(t.take("open")?.[0]).toBe("open");
  });

  test("quit: every socket and the loop's own descriptors are closed", () => {
    const t = setup();
    t.session();
    t.session();
    t.loop.handle(["quit"]);
    expect(t.loop.quitting).toBe(true);
    t.loop.close(true);
    expect(t.libc.open).toBe(0);
  });

  test("start-up memory is released once, a burst's garbage collected once it is over", () => {
    const t = setup();
    t.session();
    t.advance(3000);
    t.spin();
    expect(t.memory()).toEqual({ released: 1, collected: 1 });
    t.advance(10_000);
    t.spin();
    expect(t.memory()).toEqual({ released: 1, collected: 1 });
  });
});
