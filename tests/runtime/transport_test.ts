import { test } from "bun:test";
import { cases } from "./conformance.ts";

for (const [name, run] of cases) test(`runtime adapter (bun): ${name}`, run, 20_000);
