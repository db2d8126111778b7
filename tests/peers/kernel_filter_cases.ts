/**
 * The kernel's source filter on a real socket: only the listed sources are queued, the rest
 * are counted as the socket's drops; a host without a port passes every port of it. Run by
 * `bun test` (kernel_filter_test.ts) and `deno test` (tests/runtime/deno/), since each runtime
 * hands the kernel the program's address its own way.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { loadLibc } from "#thread";
import { bindUdp } from "#runtime";
import { KernelSourceFilter } from "../../src/peers/kernel_filter.ts";
import type { UdpSocket } from "../../src/runtime/types.ts";
import type { Case } from "../runtime/conformance.ts";

const LOOPBACK = 0x7f000001;

export function kernelFilterCases(): Case[] {
  const open: { close(): void }[] = [];
  const closeAll = () => {
    for (const s of open.splice(0)) s.close();
  };

  async function sender() {
    const socket = dgram.createSocket("udp4");
    open.push(socket);
    await new Promise<void>((r) => socket.bind(0, "127.0.0.1", () => r()));
    return {
      port: socket.address().port,
      send: (to: number, text: string) =>
        new Promise<void>((r) => socket.send(text, to, "127.0.0.1", () => r())),
    };
  }

  async function receiver(): Promise<{ socket: UdpSocket; got: string[] }> {
    const got: string[] = [];
    const socket = await bindUdp(
      { host: "127.0.0.1", port: 0 },
      (data) => got.push(new TextDecoder().decode(data)),
    );
    open.push(socket);
    return { socket, got };
  }

  const settle = () => new Promise((r) => setTimeout(r, 100));

  return [
    ["passes listed sources, drops and counts the rest, and comes off", async () => {
      try {
        const libc = await loadLibc();
        assert.ok(libc, "libc loads");
        const { socket, got } = await receiver();
        const filter = KernelSourceFilter.find(libc, socket.port);
        assert.ok(filter, "the socket is found");
        const a = await sender();
        const b = await sender();

        assert.deepEqual(filter.apply([{ ip: LOOPBACK, port: a.port }]), { ok: true });
        await a.send(socket.port, "a1");
        await b.send(socket.port, "b1");
        await settle();
        assert.deepEqual(got, ["a1"]);
        assert.equal(filter.drops(), 1);

        assert.deepEqual(filter.apply([{ ip: LOOPBACK, port: null }]), { ok: true });
        await b.send(socket.port, "b2");
        await settle();
        assert.deepEqual(got, ["a1", "b2"]);

        assert.deepEqual(filter.apply([{ ip: 0x0a000001, port: null }]), { ok: true });
        await a.send(socket.port, "a2");
        await settle();
        assert.deepEqual(got, ["a1", "b2"]);
        assert.equal(filter.drops(), 2);

        filter.remove();
        await a.send(socket.port, "a3");
        await settle();
        assert.deepEqual(got, ["a1", "b2", "a3"]);
      } finally {
        closeAll();
      }
    }],
    ["finds no socket on a port nobody here bound", async () => {
      const libc = await loadLibc();
      const { socket } = await receiver();
      closeAll();
      await settle();
      assert.equal(KernelSourceFilter.find(libc!, socket.port), null);
    }],
  ];
}
