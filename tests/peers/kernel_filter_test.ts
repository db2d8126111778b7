import { test } from "bun:test";
import { kernelFilterCases } from "./kernel_filter_cases.ts";

for (const [name, run] of kernelFilterCases()) test(`kernel source filter: ${name}`, run);
