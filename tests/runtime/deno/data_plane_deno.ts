import { dataPlaneCases, threadGrowthCases } from "../../dataplane/data_plane_cases.ts";

for (
  const [name, run] of [
    ...dataPlaneCases(1, "sockets"),
    ...dataPlaneCases(2, "epoll"),
    ...threadGrowthCases(),
  ]
) {
  Deno.test({
    name: `data plane (deno): ${name}`,
    fn: run,
    sanitizeOps: false,
    sanitizeResources: false,
  });
}
