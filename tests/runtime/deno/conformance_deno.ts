import { conformance } from "../conformance.ts";

for (const [name, run] of conformance()) {
  Deno.test({
    name: `runtime adapter (deno): ${name}`,
    fn: run,
    sanitizeOps: false,
    sanitizeResources: false,
  });
}
