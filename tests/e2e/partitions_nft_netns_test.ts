/**
 * The same partitions with `--data-plane nft` (docs/KERNEL_PLANE.md): the writers sit in a
 * namespace of their own, so the kernel's NAT carries their sessions; a failover cuts them with
 * the guard and the wake. The scenarios that move the active node, and a restart.
 */
import { partitionSuite } from "./partition_suite.ts";

partitionSuite({
  plane: "nft",
  prefix: "glpn2e",
  control: false,
  scenarios: [
    "the active node killed while one proxy is isolated",
    "a one-way link at a switchover",
    "a proxy restarted without its state file",
  ],
});
