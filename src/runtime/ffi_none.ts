/** No foreign-function interface on this runtime (Node): the epoll data plane is not available. */
import type { Libc } from "./libc.ts";

export function loadLibc(): Promise<Libc | null> {
  return Promise.resolve(null);
}
