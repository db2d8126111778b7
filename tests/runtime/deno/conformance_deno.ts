import { cases } from "../conformance.ts";

for (const [name, run] of cases) {
  Deno.test({
    name: `runtime adapter (deno): ${name}`,
    fn: run,
    sanitizeOps: false,
    sanitizeResources: false,
  });
}
