import { test } from "bun:test";
import { dataPlaneCases } from "./data_plane_cases.ts";

// The main-thread plane and the worker-thread plane (what `galerad proxy` uses by default).
for (const threads of [1, 2]) {
  for (const [name, run] of dataPlaneCases(threads)) test(`data plane: ${name}`, run, 20_000);
}
