import { someProcess } from "./proc.ts";

/**
 * Whether an SST script is running on this host as the donor (`wsrep_sst_<method> --role donor`),
 * read from /proc. A node in state 2 (Donor/Desynced) with no such script is serving IST from its
 * gcache, which does not block writes; with one, it is copying its data for an SST (rsync holds a
 * global read lock). Returns null where /proc cannot be read, so callers stay conservative.
 */
export function sstDonorRunning(proc = "/proc"): boolean | null {
  return someProcess((argv) => {
    if (!argv.some((a) => a.includes("wsrep_sst_"))) return false;
    const role = argv.indexOf("--role");
    return role >= 0 && argv[role + 1] === "donor";
  }, proc);
}
