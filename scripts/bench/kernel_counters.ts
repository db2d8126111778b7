import { readFileSync } from "node:fs";

/**
 * One of the kernel's counters in this network namespace, from a file of paired lines
 * (`Section: names…` then `Section: values…`, as /proc/net/netstat and /proc/net/snmp are).
 */
function kernelCounter(file: string, section: string, name: string): number {
  const lines = readFileSync(file, "utf8").split("\n").filter((l) => l.startsWith(`${section}:`));
  const names = lines[0].split(/\s+/);
  return Number(lines[1].split(/\s+/)[names.indexOf(name)] ?? 0);
}

/**
 * SYNs and handshakes that listeners dropped (TcpExt ListenDrops, which includes the
 * accept-queue overflows): read before and after a step, the difference is what that step lost
 * beyond some listener's backlog.
 */
export function listenDrops(): number {
  return kernelCounter("/proc/net/netstat", "TcpExt", "ListenDrops");
}

/** UDP datagrams dropped at a full socket receive buffer (Udp RcvbufErrors). */
export function udpReceiveBufferErrors(): number {
  return kernelCounter("/proc/net/snmp", "Udp", "RcvbufErrors");
}
