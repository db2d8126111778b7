/**
 * Puts the source filter (source_filter.ts) on the peer socket. The runtimes do not hand out a
 * UDP socket's descriptor, so it is found the way `ss -p` finds it: the socket's inode by its
 * port in /proc/self/net/udp, then the descriptor of ours that links to that inode.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { type Libc, SO_ATTACH_FILTER, SO_DETACH_FILTER, SOL_SOCKET } from "../runtime/libc.ts";
import { parseProcNetUdp } from "./proc_net_udp.ts";
import { type FilterSource, sourceFilter } from "./source_filter.ts";

export class KernelSourceFilter {
  private constructor(
    readonly libc: Libc,
    readonly fd: number,
    readonly inode: number,
  ) {}

  /** The filter for our IPv4 UDP socket bound to `port`, or null if it cannot be found. */
  static find(libc: Libc, port: number): KernelSourceFilter | null {
    const inodes = new Set(udpSockets().filter((s) => s.localPort === port).map((s) => s.inode));
    if (inodes.size === 0) return null;
    for (const name of readdirSync("/proc/self/fd")) {
      let target;
      try {
        target = readlinkSync(`/proc/self/fd/${name}`);
      } catch {
        continue; // closed since the listing
      }
      const inode = Number(/^socket:\[(\d+)\]$/.exec(target)?.[1]);
      if (inodes.has(inode)) return new KernelSourceFilter(libc, Number(name), inode);
    }
    return null;
  }

  /** Lets only `sources` through from now on; the kernel's answer, as errno, on failure. */
  apply(sources: readonly FilterSource[]): { ok: true } | { ok: false; errno: number } {
    const program = sourceFilter(sources);
    // struct sock_fprog on LP64: the instruction count, then a pointer at offset 8.
    const fprog = new Uint8Array(16);
    const view = new DataView(fprog.buffer);
    view.setUint16(0, program.length / 8, true);
    view.setBigUint64(8, this.libc.address(program), true);
    if (this.libc.setsockopt(this.fd, SOL_SOCKET, SO_ATTACH_FILTER, fprog, 16) === 0) {
      return { ok: true };
    }
    return { ok: false, errno: this.libc.errno() };
  }

  /** Takes the filter off: every datagram reaches the process again. */
  remove(): void {
    this.libc.setsockopt(this.fd, SOL_SOCKET, SO_DETACH_FILTER, new Uint8Array(4), 4);
  }

  /** Datagrams the kernel dropped for this socket (the filter's and a full buffer's). */
  drops(): number {
    return udpSockets().find((s) => s.inode === this.inode)?.drops ?? 0;
  }
}

function udpSockets() {
  try {
    return parseProcNetUdp(readFileSync("/proc/self/net/udp", "utf8"));
  } catch {
    return [];
  }
}
