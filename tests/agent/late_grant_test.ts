/**
 * A late grant through a real agent: in a handover the agent refuses a holder with "wait" while
 * another still holds the old node, and when that one releases it, the waiting holder is granted
 * the new node at its own address, without asking again. (Before, every answer went back to the
 * sender of the datagram being read, so a late grant would have gone to the releasing holder.)
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import dgram from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort, startAgent, type TestAgent, waitFor } from "../../scripts/lab/fixtures.ts";
import { type Daemon, startDaemon } from "../../scripts/lab/spawn.ts";
import type { AgreementMessage } from "../../src/core/agreement_message.ts";
import type { Register } from "../../src/core/register.ts";
import { decodeMessage, encodeMessage } from "../../src/peers/codec.ts";
import { createKeyRing, type KeyRing } from "../../src/peers/keyring.ts";

const SECRET = "late-grant-test-secret-0123456789";
const CLUSTER = "galera";

/** A lease holder speaking the peer wire from its own socket. */
class Holder {
  readonly socket = dgram.createSocket("udp4");
  readonly replies: AgreementMessage[] = [];
  readonly bootId = crypto.getRandomValues(new Uint8Array(8));
  seq = 0;
  t = 0;
  constructor(readonly name: string, readonly keys: KeyRing, readonly port: number) {
    this.socket.on("message", async (data) => {
      try {
        this.replies.push((await decodeMessage(new Uint8Array(data), keys)).message);
      } catch { /* not for us */ }
    });
  }
  bind(): Promise<void> {
    return new Promise((r) => this.socket.bind(0, "127.0.0.1", () => r()));
  }
  /** Asks for a lease, saying what it serves and offering `register`; returns its stamp. */
  async ask(register: Register, serving: string | null, targets: Record<string, string>) {
    const t = ++this.t;
    const data = await encodeMessage(
      {
        kind: "request",
        from: this.name,
        to: "db0",
        incarnation: `${this.name}-life`,
        digest: "0a0b0c0d",
        register,
        epochSeen: register.epoch,
        view: {},
        serving,
        request: { t, serving, lease: 1000 },
        targets,
      },
      { bootId: this.bootId, seq: ++this.seq },
      this.keys,
    );
    await new Promise<void>((r) => this.socket.send(data, this.port, "127.0.0.1", () => r()));
    return t;
  }
  answerTo(t: number) {
    return this.replies.filter((m) => m.grant?.t === t).at(-1)?.grant;
  }
}

const register = (
  epoch: number,
  proposer: string,
  active: string,
  previous: string | null,
): Register => ({
  cluster: CLUSTER,
  epoch,
  proposer,
  incarnation: `${proposer}-life`,
  active,
  previous,
  kind: previous ? "failover" : "initial",
  reason: "test",
  time: 1,
});

describe("a late grant from an agent", () => {
  let agent: Daemon;
  let dir: string;
  let votePort: number;
  const nodes: TestAgent[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "galerad-late-"));
    nodes.push(await startAgent({ healthy: true, index: 0 }));
    nodes.push(await startAgent({ healthy: true, index: 1 }));
    votePort = await freePort();
    agent = startDaemon([
      "healthcheck",
      "--listen",
      `127.0.0.1:${await freePort()}`,
      "--mysql-host",
      "127.0.0.1",
      "--mysql-port",
      "1",
      "--vote-listen",
      `127.0.0.1:${votePort}`,
      "--lease",
      "1s",
      "--interval",
      "100ms",
      "--state-file",
      path.join(dir, "agent.json"),
    ], { env: { GALERAD_PEER_SECRET: SECRET } });
  });

  afterAll(async () => {
    await agent?.stop();
    for (const n of nodes) await n.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test(
    "goes to the holder that waited, at its own address, once the old holder releases",
    async () => {
      const keys = await createKeyRing([SECRET]);
      const h1 = new Holder("h1", keys, votePort);
      const h2 = new Holder("h2", keys, votePort);
      await Promise.all([h1.bind(), h2.bind()]);
      const targets = { db0: nodes[0].url, db1: nodes[1].url };
      try {
        // h1 gets db0 (once the agent has probed the nodes and its quiet start is over).
        const first = register(1, "h1", "db0", null);
        await waitFor("h1 granted db0", async () => {
          const t = await h1.ask(first, null, targets);
          await new Promise((r) => setTimeout(r, 100));
          return h1.answerTo(t)?.node === "db0";
        }, 15_000);
        const serving = await h1.ask(first, "db0", targets);
        await waitFor(
          "h1 granted db0 while serving it",
          () => h1.answerTo(serving)?.node === "db0",
        );

        // db0 fails; h2 offers the failover to db1 and is told to wait for h1's release.
        nodes[0].set({ healthy: false });
        const failover = register(2, "h2", "db1", "db0");
        let waiting = 0;
        await waitFor("h2 told to wait for h1", async () => {
          waiting = await h2.ask(failover, null, targets);
          await new Promise((r) => setTimeout(r, 100));
          const answer = h2.answerTo(waiting);
          return answer?.wait === true && answer.node === null;
        }, 10_000);

        // h1 releases: both are granted db1, h2 for the request it sent before, never asked again.
        const released = await h1.ask(failover, null, targets);
        await waitFor("h1 granted db1", () => h1.answerTo(released)?.node === "db1");
        await waitFor("h2 granted db1 late", () => h2.answerTo(waiting)?.node === "db1");
        expect(h2.replies.every((m) => m.to === "h2")).toBe(true);
        expect(h1.replies.every((m) => m.to === "h1")).toBe(true);
      } finally {
        h1.socket.close();
        h2.socket.close();
      }
    },
    40_000,
  );
});
