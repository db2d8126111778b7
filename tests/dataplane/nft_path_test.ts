/**
 * Conformance of the kernel path (`--data-plane nft`): route, swap, sever, refuse, counts and
 * what a stop leaves, on real nftables and conntrack. Clients, the proxy and two stand-in nodes
 * run in network namespaces this test makes (scripts/netns-lab.sh) and removes; the host's own
 * ruleset is never touched. Needs root, as every namespace test here.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import path from "node:path";
import { waitFor } from "../../scripts/lab/fixtures.ts";
import { ROOT } from "../../scripts/lab/spawn.ts";

const PREFIX = "glnft";
const env = { ...process.env, NETNS_PREFIX: PREFIX, NETNS_STATE: "/tmp/glnft-netns" };
const NET = "10.231.7";
const PX = `${NET}.11`, DB = `${NET}.12`;
const PORT = 4306;
const HERE = path.join(ROOT, "tests/dataplane/nft");
const BUN = process.execPath;
const ns = (name: string) => ["ip", "netns", "exec", `${PREFIX}-${name}`];

function sh(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      command,
      args,
      { env },
      (e, out, err) =>
        e ? reject(new Error(`${command} ${args.join(" ")}: ${err.trim()}`)) : resolve(out),
    )
  );
}
const netns = (...args: string[]) => sh("bash", [path.join(ROOT, "scripts/netns-lab.sh"), ...args]);

/** A child that answers JSON lines; `next` waits for the first line not yet taken that matches. */
class Lines {
  readonly lines: string[] = [];
  #taken = new Set<number>();
  constructor(readonly child: ChildProcess) {
    let buffer = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      buffer += chunk;
      const parts = buffer.split("\n");
      buffer = parts.pop()!;
      this.lines.push(...parts);
    });
  }
  send(o: unknown) {
    this.child.stdin!.write(`${JSON.stringify(o)}\n`);
  }
  next(what: string, match: (line: string) => boolean, timeoutMs = 10_000): Promise<string> {
    return waitFor(what, () => {
      const i = this.lines.findIndex((l, i) => !this.#taken.has(i) && match(l));
      if (i < 0) return null;
      this.#taken.add(i);
      return this.lines[i];
    }, timeoutMs);
  }
}

function start(where: string, script: string, args: string[], prefix: string[] = []) {
  const child = spawn(prefix[0] ?? ns(where)[0], [
    ...(prefix.length ? [...prefix.slice(1), ...ns(where)] : ns(where).slice(1)),
    BUN,
    path.join(HERE, script),
    ...args,
  ], { stdio: ["pipe", "pipe", "inherit"], env });
  return new Lines(child);
}

let nodes: Lines, driver: Lines, clients: Lines;
let nextId = 0;

async function ask(o: unknown) {
  driver.send(o);
  const line = await driver.next(
    `driver answers ${JSON.stringify(o)}`,
    (l) => /^\{"(ok|error)"/.test(l),
  );
  const answer = JSON.parse(line);
  if (answer.error) throw new Error(answer.error);
  return answer.ok;
}

/** Opens a client through the proxy; resolves with its id and the greeting it got. */
async function open() {
  const id = ++nextId;
  clients.send({ open: id });
  const line = await clients.next(
    `client ${id} greeted`,
    (l) => l.startsWith(`{"id":${id},"greeting"`),
  );
  return { id, greeting: JSON.parse(line).greeting as string };
}

const closed = (id: number, timeoutMs = 5000) =>
  clients.next(`client ${id} closed`, (l) => l.startsWith(`{"id":${id},"closed"`), timeoutMs)
    .then((l) => JSON.parse(l) as { closed: number; error: string });

async function echoes(id: number, text: string) {
  clients.send({ send: id, text });
  await clients.next(`client ${id} echo`, (l) => l === JSON.stringify({ id, echo: text }));
}

const node0 = { name: "db0", host: DB, port: 13306 };
const node1 = { name: "db1", host: DB, port: 13307 };

describe.skipIf(process.getuid?.() !== 0)("the kernel path, in namespaces", () => {
  beforeAll(async () => {
    await netns("up", "cli", "px", "db");
    for (
      const [key, value] of [["net.ipv4.ip_forward", "1"], [
        "net.ipv4.conf.all.send_redirects",
        "0",
      ]]
    ) {
      await sh(ns("px")[0], [...ns("px").slice(1), "sysctl", "-qw", `${key}=${value}`]);
    }
    nodes = start("db", "nodes.ts", [DB, "13306", "13307"]);
    await nodes.next("node 13307 listening", (l) => l === "listening 13307");
    driver = start("px", "../../../scripts/bench/nft_driver.ts", [PX, String(PORT)]);
    expect(await driver.next("driver open", (l) => l.startsWith("{"))).toBe('{"ok":"open"}');
    clients = start("cli", "clients.ts", [PX, String(PORT)]);
  }, 60_000);

  afterAll(async () => {
    for (const p of [clients, driver, nodes]) p?.child.kill();
    await netns("down").catch(() => {});
  });

  test("with no route, clients reach galerad's own listener", async () => {
    expect((await open()).greeting).toContain("the kernel path points nowhere");
  });

  test("a route sends new clients to the node, through the kernel, counted per node", async () => {
    await ask({ point: node0 });
    const { id, greeting } = await open();
    expect(greeting).toBe("node-13306");
    const text = "hello through the kernel";
    await echoes(id, text);
    // The counters count whole packets (headers, handshake and bare ACKs too), so each
    // direction carries at least its payload; which one carried more depends on how the ACKs
    // fell. They are read as packets pass: the echo's may be counted a moment after it arrived.
    const down = greeting.length + text.length;
    let counts = await ask({ counts: true });
    for (let i = 0; i < 40 && counts.db0.bytesDown < down; i++) {
      await new Promise((r) => setTimeout(r, 50));
      counts = await ask({ counts: true });
    }
    expect(counts.db0.sessions).toBe(1);
    expect(counts.db0.accepted).toBe(1);
    expect(counts.db0.bytesUp).toBeGreaterThanOrEqual(text.length);
    expect(counts.db0.bytesDown).toBeGreaterThanOrEqual(down);
  });

  test("a swap cuts idle flows at both ends at once; new clients go to the new node", async () => {
    const idle = await open();
    expect(idle.greeting).toBe("node-13306");
    const before = (await ask({ counts: true })).db0.sessions;
    expect(before).toBe(2);
    await ask({ point: node1 });
    const woken = ask({ wake: true });
    const seen = await closed(idle.id);
    expect(seen.error).toBe("ECONNRESET");
    // The node's end of every cut flow closed too (its peer is this host's masqueraded port).
    await nodes.next("the node's end closed", (l) => l.startsWith("closed 13306 "));
    await nodes.next("the other node's end closed", (l) => l.startsWith("closed 13306 "));
    expect((await woken).left).toBe(0);
    expect((await open()).greeting).toBe("node-13307");
    const counts = await ask({ counts: true });
    expect(counts.db0.sessions).toBe(0);
    expect(counts.db1.sessions).toBe(1);
  });

  test("no active node: the kernel's flows are cut and new clients are refused by galerad", async () => {
    const last = nextId;
    await ask({ point: null });
    await ask({ wake: true });
    expect((await closed(last)).error).toBe("ECONNRESET");
    expect((await open()).greeting).toContain("the kernel path points nowhere");
  });

  test("a drain stops new flows and keeps the running ones", async () => {
    await ask({ point: node0 });
    const running = await open();
    expect(running.greeting).toBe("node-13306");
    await ask({ drain: true });
    expect((await open()).greeting).toContain("the kernel path points nowhere");
    await echoes(running.id, "still here");
  });

  test("a second galerad on the host cannot take the route table", async () => {
    const second = start("px", "../../../scripts/bench/nft_driver.ts", [PX, String(PORT + 1)]);
    const line = await second.next("second driver answers", (l) => l.startsWith("{"));
    expect(JSON.parse(line).error).toContain("held by another process");
  });

  test("without CAP_NET_ADMIN: one line saying what is needed", async () => {
    const denied = start("px", "../../../scripts/bench/nft_driver.ts", [PX, String(PORT + 2)], [
      "setpriv",
      "--bounding-set",
      "-net_admin,-net_raw",
    ]);
    const line = await denied.next("driver without the capability", (l) => l.startsWith("{"));
    expect(JSON.parse(line).error).toBe(
      "--data-plane nft: nftables refused the guard table: needs CAP_NET_ADMIN (run as root or grant the capability)",
    );
  });

  test("a stop cuts what runs, removes the route and keeps the guard: nothing routed after", async () => {
    const running = nextId - 1;
    await ask({ close: true });
    expect((await closed(running)).error).toBe("ECONNRESET");
    await waitFor("the driver ended", () => driver.child.exitCode !== null);
    await expect(sh(ns("px")[0], [...ns("px").slice(1), "nft", "list", "table", "ip", "galerad"]))
      .rejects.toThrow("No such file or directory");
    await sh(ns("px")[0], [...ns("px").slice(1), "nft", "list", "table", "ip", "galerad_guard"]);
    // Nothing listens on the proxy port now: refused outright, never carried to a node.
    clients.send({ open: ++nextId });
    expect((await closed(nextId)).error).toBe("ECONNREFUSED");
  });
});
