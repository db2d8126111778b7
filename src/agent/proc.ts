import { readdirSync, readFileSync } from "node:fs";

/**
 * Calls `visit` with the argument list of every process on this host (from /proc/PID/cmdline)
 * until it returns true. Returns whether one did, or null where /proc cannot be read.
 */
export function someProcess(visit: (argv: string[]) => boolean, proc = "/proc"): boolean | null {
  let entries: string[];
  try {
    entries = readdirSync(proc);
  } catch {
    return null;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`${proc}/${entry}/cmdline`, "latin1").split("\0").filter((a) => a !== "");
    } catch {
      continue; // the process ended, or is not ours to read
    }
    if (visit(argv)) return true;
  }
  return false;
}
