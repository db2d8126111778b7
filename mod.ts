/**
 * galerad: single-writer routing for Galera clusters. Run as a program, this is the CLI;
 * imported, it exports the building blocks.
 */
import process from "node:process";
import { main } from "./src/cli/main.ts";

export { parseBackendSpec } from "./src/core/backend_spec.ts";
export { applyProbe, initialHealth } from "./src/core/health_state.ts";
export { startAgreement, step } from "./src/core/agreement.ts";
export { startWitness, witnessStep } from "./src/core/witness.ts";
export { mergeRegisters } from "./src/core/register.ts";
export { Proxy } from "./src/proxy/proxy.ts";
export { VERSION } from "./src/version.ts";

if (import.meta.main) {
  await main(process.argv.slice(2));
}
