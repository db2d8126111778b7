import { test } from "bun:test";
import * as bunNative from "../../src/runtime/bun.ts";
import * as nodeNet from "../../src/runtime/node.ts";
import { conformance } from "./conformance.ts";

// Both adapters that run under Bun: native sockets (what `#runtime` picks on Bun) and node:net
// (the default for Node-compatible runtimes).
for (const [label, runtime] of [["bun native", bunNative], ["node:net", nodeNet]] as const) {
  for (const [name, run] of conformance(runtime)) {
    test(`runtime adapter (${label}): ${name}`, run, 20_000);
  }
}
