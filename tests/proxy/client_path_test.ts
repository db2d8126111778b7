/**
 * acceptClient() over a fake client whose connect the test settles: what a sever does to a
 * session whose node is still being dialled (connect splices by itself, so the sever must
 * cancel it, and the session must count as live until the dial settles).
 */
import { describe, expect, test } from "bun:test";
import type { ClientConn, SpliceWatcher } from "../../src/dataplane/plane.ts";
import { acceptClient, type ClientRouting } from "../../src/proxy/client_path.ts";
import type { BackendRuntime } from "../../src/proxy/proxy.ts";
import type { Session } from "../../src/proxy/session.ts";
import type { TcpConn } from "../../src/runtime/types.ts";

interface Dial {
  target: string;
  watcher: SpliceWatcher;
  resolve(server: TcpConn): void;
  reject(error: Error): void;
}

/** A client whose every connect waits for the test; cancel() fails the pending one. */
class FakeClient implements Partial<ClientConn> {
  readonly remoteAddress = "192.0.2.1";
  readonly remotePort = 40000;
  readonly localAddress = "192.0.2.2";
  readonly localPort = 3306;
  readonly dials: Dial[] = [];
  readonly said: string[] = [];
  destroyed = false;
  closed = new Promise<void>(() => {});
  connect(target: { host: string; port: number }, _options: unknown, watcher: SpliceWatcher) {
    return new Promise<TcpConn>((resolve, reject) => {
      this.dials.push({ target: `${target.host}:${target.port}`, watcher, resolve, reject });
    });
  }
  cancel(): void {
    this.said.push("cancel");
    this.dials.at(-1)?.reject(new Error("cancelled"));
  }
  destroy(): void {
    this.destroyed = true;
  }
  endWith(data: Uint8Array): void {
    this.said.push(`endWith ${new TextDecoder().decode(data.subarray(7))}`);
  }
}

function fakeServer(): TcpConn & { destroyed: boolean } {
  return {
    remoteAddress: "",
    remotePort: 0,
    localAddress: "",
    localPort: 0,
    closed: new Promise<void>(() => {}),
    destroyed: false,
    write: () => Promise.resolve(),
    endWith() {},
    destroy() {
      this.destroyed = true;
    },
  };
}

function routing() {
  const backends = new Map<string, BackendRuntime>();
  const ended: Session[] = [];
  for (const [name, port] of [["db0", 3306], ["db1", 3307]] as const) {
    const runtime = {
      spec: { name, host: "192.0.2.10", port },
      sessions: new Set<Session>(),
      home: { ended: (s: Session) => ended.push(s) },
    } as unknown as BackendRuntime;
    backends.set(name, runtime);
  }
  const proxy = {
    options: { connectTimeoutMs: 1000, keepAliveMs: 0, maxConnecting: 0, sendProxyV2: false },
    backends,
    counters: { accepted: 0, refused: {}, connectFailures: 0 },
    active: "db0" as string | null,
    refusal: () => null,
    waitForRoute: () => Promise.resolve(),
    release(backend: BackendRuntime, session: Session) {
      backend.sessions.delete(session);
    },
    sessionStarted() {},
  };
  return { proxy, backends, ended };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("acceptClient() and a sever during the dial", () => {
  test("a dialled session counts as live; a sever cancels it and the client goes to the new node", async () => {
    const { proxy, backends } = routing();
    const client = new FakeClient();
    const done = acceptClient(proxy as unknown as ClientRouting, client as unknown as ClientConn);
    await tick();
    expect(client.dials.map((d) => d.target)).toEqual(["192.0.2.10:3306"]);
    const [session] = backends.get("db0")!.sessions;
    expect(session.dialling).toBe(true); // what keeps the sever from being confirmed early

    // The agreement moves to db1 and severs db0's sessions.
    proxy.active = "db1";
    for (const s of backends.get("db0")!.sessions) s.close();
    expect(client.said).toEqual(["cancel"]);
    await tick();
    expect(backends.get("db0")!.sessions.size).toBe(0);
    expect(client.dials.map((d) => d.target)).toEqual(["192.0.2.10:3306", "192.0.2.10:3307"]);

    const server = fakeServer();
    client.dials[1].resolve(server);
    await done;
    const [moved] = backends.get("db1")!.sessions;
    expect(moved.server).toBe(server);
    expect(moved.dialling).toBe(false);
    expect(proxy.counters.accepted).toBe(1);
    expect(client.destroyed).toBe(false);
  });

  test("a dial that spliced before the sever reached it is ended, not refused", async () => {
    const { proxy, backends } = routing();
    const client = new FakeClient();
    // This client's plane had spliced already: its cancel cannot fail the dial any more.
    client.cancel = () => void client.said.push("cancel");
    const done = acceptClient(proxy as unknown as ClientRouting, client as unknown as ClientConn);
    await tick();
    const [session] = backends.get("db0")!.sessions;
    session.close();
    const server = fakeServer();
    client.dials[0].resolve(server);
    await done;
    expect(client.said).toEqual(["cancel"]);
    expect(client.destroyed).toBe(true);
    expect(server.destroyed).toBe(true);
    // Still on the books until the data plane reports its end: the sever waits for that.
    expect(session.server).toBe(server);
    expect(backends.get("db0")!.sessions.has(session)).toBe(true);
    expect(proxy.counters.accepted).toBe(0);
  });

  test("a failed dial that no sever caused is refused with the node's name", async () => {
    const { proxy, backends } = routing();
    const client = new FakeClient();
    const done = acceptClient(proxy as unknown as ClientRouting, client as unknown as ClientConn);
    await tick();
    client.dials[0].reject(new Error("connect to 192.0.2.10:3306 failed: ECONNREFUSED"));
    await done;
    expect(backends.get("db0")!.sessions.size).toBe(0);
    expect(proxy.counters.connectFailures).toBe(1);
    expect(client.said).toHaveLength(1);
    expect(client.said[0]).toContain("db0");
  });
});
