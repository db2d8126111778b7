/** Partitions on real Galera with the epoll plane, every scenario, and the control (partition_suite.ts). */
import { partitionSuite } from "./partition_suite.ts";

partitionSuite({ plane: "epoll", prefix: "glpe2e", control: true });
