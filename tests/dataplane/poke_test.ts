import { describe, expect, test } from "bun:test";
import { pokeSegment } from "../../src/dataplane/poke.ts";

/** The ones' complement sum of 16-bit words; a packet with a right checksum sums to 0xffff. */
function sum(bytes: Uint8Array, initial = 0): number {
  let s = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) s += (bytes[i] << 8) | bytes[i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

const from = { ip: "10.9.2.2", port: 51234 };
const to = { ip: "10.9.0.1", port: 4306 };

describe("pokeSegment", () => {
  const packet = pokeSegment(from, to);
  const view = new DataView(packet.buffer);

  test("an IPv4 header of 20 bytes with a checksum that verifies", () => {
    expect(packet.length).toBe(40);
    expect(packet[0]).toBe(0x45);
    expect(packet[9]).toBe(6);
    expect([...packet.subarray(12, 16)]).toEqual([10, 9, 2, 2]);
    expect([...packet.subarray(16, 20)]).toEqual([10, 9, 0, 1]);
    expect(sum(packet.subarray(0, 20))).toBe(0xffff);
  });

  test("a bare ACK between the two ports whose TCP checksum verifies over the pseudo-header", () => {
    expect(view.getUint16(20)).toBe(51234);
    expect(view.getUint16(22)).toBe(4306);
    expect(packet[33]).toBe(0x10);
    const pseudo = new Uint8Array([...packet.subarray(12, 20), 0, 6, 0, 20]);
    expect(sum(packet.subarray(20), sum(pseudo))).toBe(0xffff);
  });

  test("IPv6 or a name is refused, quoting it", () => {
    expect(() => pokeSegment({ ip: "::1", port: 1 }, to)).toThrow("got ::1");
    expect(() => pokeSegment(from, { ip: "db1", port: 1 })).toThrow("got db1");
  });
});
