/**
 * The peer socket's first filter, run by the kernel: a classic BPF program (SO_ATTACH_FILTER)
 * that keeps only datagrams from the given IPv4 sources (an address, with or without its port)
 * and drops the rest before they are queued, so a flood from anywhere else never wakes the
 * proxy. Parties send from the port they listen on (one socket does both); flood_guard.ts says
 * when only those exact ports pass.
 *
 * For a UDP socket the program sees the packet from the UDP header on (source port at 0);
 * the IP header is reached at the kernel's network-layer offset (source address at 12).
 */

/** One party's address, as the kernel sees it: IPv4 as a 32-bit number, host order. */
export interface FilterSource {
  ip: number;
  /** null: any port of that address. */
  port: number | null;
}

/** The kernel's limit on a classic program's length (BPF_MAXINSNS). */
const MAX_INSTRUCTIONS = 4096;
/** Instructions per source, at most (with a port). */
const PER_SOURCE = 5;

const LD_W_ABS = 0x20;
const LD_H_ABS = 0x28;
const JEQ_K = 0x15;
const RET_K = 0x06;
/** SKF_NET_OFF (-0x100000) as the unsigned offset the kernel decodes. */
const NET = 0xfff00000;
const ACCEPT = 0xffffffff;

/** Sources one program can hold. */
export const MAX_FILTER_SOURCES = Math.floor((MAX_INSTRUCTIONS - 1) / PER_SOURCE);

/**
 * The program's instructions (struct sock_filter, 8 bytes each, native byte order: both
 * supported CPUs are little-endian). An empty list gives a program that drops everything.
 */
export function sourceFilter(sources: readonly FilterSource[]): Uint8Array {
  if (sources.length > MAX_FILTER_SOURCES) {
    throw new RangeError(
      `a source filter holds at most ${MAX_FILTER_SOURCES} addresses: got ${sources.length}`,
    );
  }
  const length = sources.reduce((n, s) => n + (s.port === null ? 3 : PER_SOURCE), 1);
  const out = new Uint8Array(length * 8);
  const view = new DataView(out.buffer);
  let at = 0;
  const put = (code: number, jt: number, jf: number, k: number) => {
    view.setUint16(at, code, true);
    view.setUint8(at + 2, jt);
    view.setUint8(at + 3, jf);
    view.setUint32(at + 4, k >>> 0, true);
    at += 8;
  };
  for (const { ip, port } of sources) {
    put(LD_W_ABS, 0, 0, NET + 12);
    if (port === null) {
      put(JEQ_K, 0, 1, ip); // another address: on to the next source
      put(RET_K, 0, 0, ACCEPT);
      continue;
    }
    put(JEQ_K, 0, 3, ip);
    put(LD_H_ABS, 0, 0, 0);
    put(JEQ_K, 0, 1, port); // another port: on to the next source
    put(RET_K, 0, 0, ACCEPT);
  }
  put(RET_K, 0, 0, 0);
  return out;
}
