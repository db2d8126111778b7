/**
 * A UDP flooder for the flood bench: one process sending copies of one datagram to one address
 * with sendmmsg(2) through libc (batches of BATCH, one syscall each), so that the sender, not
 * the runtime's per-datagram path, sets the rate. With `--rate`, paced to that many datagrams
 * per second; without, as fast as the core allows. Prints the datagrams the kernel took.
 *
 *   node_modules/.bin/bun scripts/bench/flooder.ts --port P --ms M [--rate N] [--size B]
 *
 * Linux x86_64 and aarch64 (LP64 struct layout); run under Bun only.
 */
import process from "node:process";
import { dlopen, ptr } from "bun:ffi";
import { peerJunk } from "../lab/fixtures.ts";
import { benchOptions } from "./report.ts";

const BATCH = 256;
const AF_INET = 2;
const SOCK_DGRAM = 2;
const MSG_DONTWAIT = 0x40;
// struct mmsghdr on LP64: msghdr (56 bytes) then msg_len, padded to 64.
const MMSGHDR = 64;

const USAGE = "flooder.ts --port P --ms M [--rate N] [--size B]";
const { port, ms, rate, size } = benchOptions(USAGE, {
  port: { fallback: 0, min: 1 },
  ms: { fallback: 0, min: 1 },
  rate: { fallback: 0, min: 0 },
  size: { fallback: 200, min: 8 },
});
if (port === 0 || ms === 0) {
  console.error(`flooder: --port and --ms are required (usage: ${USAGE})`);
  process.exit(2);
}

const libc = dlopen("libc.so.6", {
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  connect: { args: ["i32", "ptr", "u32"], returns: "i32" },
  sendmmsg: { args: ["i32", "ptr", "u32", "i32"], returns: "i32" },
}).symbols;

const fd = libc.socket(AF_INET, SOCK_DGRAM, 0);
const address = new Uint8Array(16);
new DataView(address.buffer).setUint16(0, AF_INET, true);
new DataView(address.buffer).setUint16(2, port, false);
address.set([127, 0, 0, 1], 4);
if (fd < 0 || libc.connect(fd, ptr(address), 16) !== 0) {
  console.error(`flooder: cannot open a UDP socket to 127.0.0.1:${port}`);
  process.exit(1);
}

const payload = peerJunk(size);
const iov = new BigUint64Array([BigInt(ptr(payload)), BigInt(size)]);
const vector = new Uint8Array(MMSGHDR * BATCH);
const view = new DataView(vector.buffer);
for (let i = 0; i < BATCH; i++) {
  view.setBigUint64(i * MMSGHDR + 16, BigInt(ptr(iov)), true); // msg_iov
  view.setBigUint64(i * MMSGHDR + 24, 1n, true); // msg_iovlen
}
const vectorPtr = ptr(vector);

let sent = 0;
const start = performance.now();
const end = start + ms;
for (;;) {
  const now = performance.now();
  if (now >= end) break;
  if (rate > 0 && sent >= ((now - start) / 1000) * rate) {
    await new Promise((r) => setTimeout(r, 1));
    continue;
  }
  const n = libc.sendmmsg(fd, vectorPtr, BATCH, MSG_DONTWAIT);
  if (n > 0) sent += n;
}
console.log(sent);
