/**
 * Waking an idle flow's ends so the kernel can reset them. A TCP end that receives a segment
 * outside its window answers with an ACK that carries its exact sequence numbers (RFC 793's
 * rule, RFC 5961's challenge ACK); the guard's `reject with tcp reset` turns that answer into a
 * reset the end accepts. Without it, a client that sends nothing would hold its flow to the old
 * node until it next speaks.
 */
import { parseIp } from "../core/address.ts";
import {
  AF_INET,
  IPPROTO_RAW,
  type Libc,
  SO_MARK,
  SOCK_RAW,
  sockaddr,
  SOL_SOCKET,
} from "../runtime/libc.ts";
import { POKE_MARK } from "./nat_rules.ts";

const ACK = 0x10;
/** Far from any live window: the receiver must answer, never accept it. */
const STRAY_SEQUENCE = 0x5a5a5a5a;

/** One end of a flow, IPv4. */
export interface End {
  ip: string;
  port: number;
}

function ipv4(text: string): Uint8Array {
  const bytes = parseIp(text);
  if (!bytes || bytes.length !== 4) throw new RangeError(`expected an IPv4 address, got ${text}`);
  return bytes;
}

function checksum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (bytes.length % 2) sum += bytes[bytes.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The IPv4 packet (header included) of a bare ACK from `from` to `to`, outside any window. */
export function pokeSegment(from: End, to: End): Uint8Array {
  const src = ipv4(from.ip);
  const dst = ipv4(to.ip);
  const packet = new Uint8Array(40);
  const view = new DataView(packet.buffer);
  view.setUint8(0, 0x45); // version 4, 5 words of header
  view.setUint16(2, packet.length);
  view.setUint16(6, 0x4000); // don't fragment
  view.setUint8(8, 64); // TTL
  view.setUint8(9, 6); // TCP
  packet.set(src, 12);
  packet.set(dst, 16);
  view.setUint16(10, ~checksum(packet.subarray(0, 20)) & 0xffff);
  view.setUint16(20, from.port);
  view.setUint16(22, to.port);
  view.setUint32(24, STRAY_SEQUENCE);
  view.setUint8(32, 5 << 4); // data offset
  view.setUint8(33, ACK);
  view.setUint16(34, 0xffff); // window
  const pseudo = new Uint8Array(12);
  pseudo.set(src, 0);
  pseudo.set(dst, 4);
  pseudo[9] = 6;
  pseudo[11] = 20;
  view.setUint16(36, ~checksum(packet.subarray(20), checksum(pseudo)) & 0xffff);
  return packet;
}

/** Sends pokes through one raw socket (CAP_NET_RAW); each carries POKE_MARK so it is untracked. */
export class Poker {
  readonly #fd: number;

  constructor(readonly libc: Libc) {
    this.#fd = libc.socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
    if (this.#fd < 0) throw new Error(`raw socket: errno ${libc.errno()} (needs CAP_NET_RAW)`);
    const mark = new Uint32Array([POKE_MARK]);
    if (libc.setsockopt(this.#fd, SOL_SOCKET, SO_MARK, mark, 4) !== 0) {
      const code = libc.errno();
      libc.close(this.#fd);
      throw new Error(`SO_MARK: errno ${code} (needs CAP_NET_ADMIN)`);
    }
  }

  /** Sends one poke; false when the kernel refused it (counted by the caller). */
  poke(from: End, to: End): boolean {
    const packet = pokeSegment(from, to);
    const address = sockaddr(to.ip, 0)!;
    return this.libc.sendto(this.#fd, packet, packet.length, 0, address, address.length) ===
      packet.length;
  }

  close(): void {
    this.libc.close(this.#fd);
  }
}
