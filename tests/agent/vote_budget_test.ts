/**
 * The agent's vote port under a flood: datagrams from addresses it has not heard a valid message
 * from share one budget, so a flood is refused before its MACs are checked, while a proxy it
 * has heard keeps a budget of its own and is still answered.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import dgram from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort, peerJunk, waitFor } from "../../scripts/lab/fixtures.ts";
import { type Daemon, startDaemon } from "../../scripts/lab/spawn.ts";
import { encodeMessage } from "../../src/peers/codec.ts";
import { createKeyRing } from "../../src/peers/keyring.ts";

const SECRET = "vote-budget-test-secret-0123456789";

describe("the agent's vote port", () => {
  let agent: Daemon;
  let dir: string;
  let statusUrl: string;
  let votePort: number;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "galerad-vote-"));
    const listen = await freePort();
    votePort = await freePort();
    agent = startDaemon([
      "healthcheck",
      "--listen",
      `127.0.0.1:${listen}`,
      "--mysql-host",
      "127.0.0.1",
      "--mysql-port",
      "1",
      "--vote-listen",
      `127.0.0.1:${votePort}`,
      "--state-file",
      path.join(dir, "agent.json"),
    ], { env: { GALERAD_PEER_SECRET: SECRET } });
    statusUrl = `http://127.0.0.1:${listen}/api/v1/status`;
    await waitFor("the agent's status", async () => (await fetch(statusUrl)).ok);
  });

  afterAll(async () => {
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const witness = async () => (await (await fetch(statusUrl)).json()).witness;

  test(
    "a flood from strangers is refused by budget; a proxy heard before is still heard",
    async () => {
      const keys = await createKeyRing([SECRET]);
      const bootId = crypto.getRandomValues(new Uint8Array(8));
      let seq = 0;
      const proxy = dgram.createSocket("udp4");
      const stranger = dgram.createSocket("udp4");
      const send = (s: dgram.Socket, data: Uint8Array) =>
        new Promise<void>((r) => s.send(data, votePort, "127.0.0.1", () => r()));
      const state = () =>
        encodeMessage(
          {
            kind: "state",
            from: "p1",
            to: "db0",
            incarnation: "a1b2c3d4",
            digest: "00000000",
            register: {
              cluster: "galera",
              epoch: 0,
              proposer: "",
              incarnation: "",
              active: null,
              previous: null,
              kind: "initial",
              reason: "",
              time: 0,
            },
            epochSeen: 0,
            view: {},
            serving: null,
          },
          { bootId, seq: ++seq },
          keys,
        );
      try {
        await send(proxy, await state());
        await waitFor(
          "the proxy's first message counted",
          async () => (await witness()).received >= 1,
        );
        const junk = peerJunk();
        for (let burst = 0; burst < 20; burst++) {
          await Promise.all(Array.from({ length: 500 }, () => send(stranger, junk)));
        }
        // The flood has been read (the drop counts stand still) before the proxy speaks again, so
        // none of its datagrams meets a receive buffer still full of the flood.
        let last = -1;
        await waitFor("the flood read to its end", async () => {
          const w = await witness();
          const total = Object.values(w.dropped as Record<string, number>).reduce(
            (a, b) => a + b,
            0,
          );
          const still = total === last;
          last = total;
          return still;
        });
        const heard = (await witness()).received;
        for (let i = 0; i < 20; i++) await send(proxy, await state());
        await waitFor(
          "the proxy heard through the flood",
          async () => (await witness()).received >= heard + 20,
        );
        const after = await witness();
        expect(after.dropped.rate_limited).toBeGreaterThan(5000);
        expect(after.received).toBe(heard + 20);
      } finally {
        proxy.close();
        stranger.close();
      }
    },
    30_000,
  );
});
