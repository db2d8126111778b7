/**
 * systemd's readiness protocol (sd_notify): one datagram per state change to the Unix socket
 * in $NOTIFY_SOCKET ("READY=1", "RELOADING=1", "STOPPING=1", "WATCHDOG=1", "STATUS=…"). Sent
 * through libc (the runtimes' own sockets have no Unix datagrams); a no-op without the variable
 * or without libc, as outside systemd.
 */
import { loadLibc } from "#thread";
import process from "node:process";
import { AF_UNIX, type Libc, MSG_NOSIGNAL, SOCK_CLOEXEC, SOCK_DGRAM, sockaddrUn } from "./libc.ts";

let libc: Promise<Libc | null> | null = null;

/** Sends `state` (lines of KEY=VALUE); resolves false when it could not be sent. */
export async function sdNotify(state: string): Promise<boolean> {
  const path = process.env.NOTIFY_SOCKET;
  if (!path) return false;
  const address = sockaddrUn(path);
  if (!address) return false;
  libc ??= loadLibc();
  const c = await libc;
  if (!c) return false;
  const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  try {
    if (c.connect(fd, address.address, address.length) < 0) return false;
    const bytes = new TextEncoder().encode(state);
    return c.send(fd, bytes, bytes.length, MSG_NOSIGNAL) === bytes.length;
  } finally {
    c.close(fd);
  }
}

/**
 * When systemd asks for a watchdog ($WATCHDOG_USEC, for this process by $WATCHDOG_PID), pings it
 * at half the interval from the main loop: a proxy whose loop is stuck stops pinging and is
 * restarted. Returns a stop function.
 */
export function startWatchdog(): () => void {
  const usec = Number(process.env.WATCHDOG_USEC);
  const pid = process.env.WATCHDOG_PID;
  if (!Number.isFinite(usec) || usec <= 0 || (pid && Number(pid) !== process.pid)) return () => {};
  const timer = setInterval(() => void sdNotify("WATCHDOG=1"), Math.max(100, usec / 2000));
  return () => clearInterval(timer);
}
