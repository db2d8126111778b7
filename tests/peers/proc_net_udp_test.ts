import { expect, test } from "bun:test";
import { parseProcNetUdp } from "../../src/peers/proc_net_udp.ts";

test("parseProcNetUdp reads port, inode and drops, and skips what does not parse", () => {
  const text = [
    "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops             ",
    "  120: 0100007F:4A8C 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 98765 2 0000000000000000 1234       ",
    "  121: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 4321 2 0000000000000000 0",
    "  garbage line",
    "",
  ].join("\n");
  expect(parseProcNetUdp(text)).toEqual([
    { localPort: 0x4a8c, inode: 98765, drops: 1234 },
    { localPort: 53, inode: 4321, drops: 0 },
  ]);
});
