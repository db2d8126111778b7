import { readdirSync, readFileSync } from "node:fs";

/**
 * Whether an SST script is running on this host as the donor (`wsrep_sst_<method> --role donor`),
 * read from /proc. A node in state 2 (Donor/Desynced) with no such script is serving IST from its
 * gcache, which does not block writes; with one, it is copying its data for an SST (rsync holds a
 * global read lock). Returns null where /proc cannot be read, so callers stay conservative.
 */
export function sstDonorRunning(proc = "/proc"): boolean | null {
  let entries: string[];
  try {
    entries = readdirSync(proc);
  } catch {
    return null;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`${proc}/${entry}/cmdline`, "latin1");
    } catch {
      continue; // the process ended, or is not ours to read
    }
    if (!cmdline.includes("wsrep_sst_")) continue;
    const args = cmdline.split("\0");
    const role = args.indexOf("--role");
    if (role >= 0 && args[role + 1] === "donor") return true;
  }
  return false;
}
