import { kernelFilterCases } from "../../peers/kernel_filter_cases.ts";

for (const [name, run] of kernelFilterCases()) {
  Deno.test({
    name: `kernel source filter (deno): ${name}`,
    fn: run,
    sanitizeOps: false,
    sanitizeResources: false,
  });
}
