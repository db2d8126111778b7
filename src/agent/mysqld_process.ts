import { someProcess } from "./proc.ts";

/** How to recognise this node's server among the host's processes. */
export interface ServerIdentity {
  defaultsFile?: string;
  datadir?: string;
}

/**
 * Whether a command line (NUL-separated argv, as /proc/PID/cmdline holds it) is this node's
 * running server: a mariadbd or mysqld that is not a `--wsrep-recover` run, and that names our
 * defaults file or datadir, or names neither (a host with one server, as systemd starts it).
 */
export function isOurServer(argv: string[], id: ServerIdentity): boolean {
  const exe = argv[0]?.split("/").at(-1) ?? "";
  if (exe !== "mariadbd" && exe !== "mysqld") return false;
  if (argv.some((a) => a === "--wsrep-recover" || a === "--wsrep_recover")) return false;
  const named = argv.filter((a) => a.startsWith("--defaults-file=") || a.startsWith("--datadir="));
  if (named.length === 0) return true;
  return named.some((a) =>
    (id.defaultsFile !== undefined && a === `--defaults-file=${id.defaultsFile}`) ||
    (id.datadir !== undefined &&
      a.replace(/\/+$/, "") === `--datadir=${id.datadir.replace(/\/+$/, "")}`)
  );
}

/** Whether this node's server process is alive on this host (null where /proc is unreadable). */
export function serverProcessAlive(id: ServerIdentity, proc = "/proc"): boolean | null {
  return someProcess((argv) => isOurServer(argv, id), proc);
}
