import { test } from "bun:test";
import { dataPlaneCases, threadGrowthCases } from "./data_plane_cases.ts";

// The runtime's sockets on the main thread, and epoll threads (what
// `galerad proxy` uses by default on Linux).
for (
  const [threads, kind] of [[1, "sockets"], [1, "epoll"], [2, "epoll"]] as const
) {
  for (const [name, run] of dataPlaneCases(threads, kind)) test(`data plane: ${name}`, run, 20_000);
}
for (const [name, run] of threadGrowthCases()) test(`data plane: ${name}`, run, 30_000);
