import { expect, test } from "bun:test";
import { openDataPlane } from "../../src/dataplane/open_data_plane.ts";
import { dataPlaneCases, threadGrowthCases } from "./data_plane_cases.ts";

// The runtime's sockets on the main thread, and epoll threads (what
// `galerad proxy` uses by default on Linux).
for (
  const [threads, kind] of [[1, "sockets"], [1, "epoll"], [2, "epoll"]] as const
) {
  for (const [name, run] of dataPlaneCases(threads, kind)) test(`data plane: ${name}`, run, 20_000);
}
for (const [name, run] of threadGrowthCases()) test(`data plane: ${name}`, run, 30_000);

test("data plane: the runtime's sockets asked for with 2 threads run one, on the main thread", async () => {
  const plane = openDataPlane(2, "sockets");
  const listener = await plane.listen(
    { host: "127.0.0.1", port: 0 },
    { keepAliveMs: 0 },
    (c) => c.destroy(),
  );
  try {
    expect(plane.kind).toBe("sockets");
    expect(plane.threads).toBe(1);
  } finally {
    await listener.close();
  }
});
