import { describe, expect, test } from "bun:test";
import { MAX_FILTER_SOURCES, sourceFilter } from "../../src/peers/source_filter.ts";

/**
 * Runs a classic BPF program over a packet the way the kernel does for a UDP socket: offset 0
 * is the UDP header (source port first), SKF_NET_OFF + n reaches the IP header. Only the
 * instructions source_filter.ts emits are known; anything else fails the test.
 */
function run(program: Uint8Array, srcIp: number, srcPort: number): number {
  const view = new DataView(program.buffer);
  let a = 0;
  for (let pc = 0; pc < program.length / 8;) {
    const code = view.getUint16(pc * 8, true);
    const jt = view.getUint8(pc * 8 + 2);
    const jf = view.getUint8(pc * 8 + 3);
    const k = view.getUint32(pc * 8 + 4, true);
    if (code === 0x20 && k === 0xfff0000c) a = srcIp;
    else if (code === 0x28 && k === 0) a = srcPort;
    else if (code === 0x15) {
      pc += 1 + (a === k ? jt : jf);
      continue;
    } else if (code === 0x06) return k;
    else throw new Error(`unexpected instruction ${code.toString(16)} k=${k.toString(16)}`);
    pc++;
  }
  throw new Error("ran off the end of the program");
}

const ip = (text: string) => text.split(".").reduce((n, b) => n * 256 + Number(b), 0);

describe("sourceFilter", () => {
  const program = sourceFilter([
    { ip: ip("10.0.0.1"), port: 4567 },
    { ip: ip("10.0.0.2"), port: null },
    { ip: ip("10.0.0.3"), port: 4568 },
  ]);

  test("accepts a listed address at its port, or at any port when none is given", () => {
    expect(run(program, ip("10.0.0.1"), 4567)).toBe(0xffffffff);
    expect(run(program, ip("10.0.0.2"), 1)).toBe(0xffffffff);
    expect(run(program, ip("10.0.0.2"), 65535)).toBe(0xffffffff);
    expect(run(program, ip("10.0.0.3"), 4568)).toBe(0xffffffff);
  });

  test("drops another port of a listed address, and any other address", () => {
    expect(run(program, ip("10.0.0.1"), 4568)).toBe(0);
    expect(run(program, ip("10.0.0.3"), 4567)).toBe(0);
    expect(run(program, ip("10.0.0.4"), 4567)).toBe(0);
    expect(run(program, ip("255.255.255.255"), 4567)).toBe(0);
  });

  test("with no sources, drops everything", () => {
    expect(run(sourceFilter([]), ip("127.0.0.1"), 4567)).toBe(0);
  });

  test("stays within the kernel's program length, and says so past it", () => {
    const most = Array.from({ length: MAX_FILTER_SOURCES }, (_, i) => ({ ip: i, port: 1 }));
    expect(sourceFilter(most).length / 8).toBeLessThanOrEqual(4096);
    expect(run(sourceFilter(most), MAX_FILTER_SOURCES - 1, 1)).toBe(0xffffffff);
    expect(() => sourceFilter([...most, { ip: 1, port: 1 }])).toThrow(
      `a source filter holds at most ${MAX_FILTER_SOURCES} addresses: got ${
        MAX_FILTER_SOURCES + 1
      }`,
    );
  });
});
