import { readFileSync } from "node:fs";

/**
 * The kernel's count of SYNs and handshakes that listeners in this network namespace dropped
 * (TcpExt ListenDrops in /proc/net/netstat, which includes the accept-queue overflows): read
 * before and after a step, the difference is what that step lost beyond some listener's backlog.
 */
export function listenDrops(): number {
  const lines = readFileSync("/proc/net/netstat", "utf8").split("\n").filter((l) =>
    l.startsWith("TcpExt:")
  );
  const names = lines[0].split(/\s+/);
  const values = lines[1].split(/\s+/).map(Number);
  return values[names.indexOf("ListenDrops")] ?? 0;
}
