/**
 * What a data-plane thread would need of a Node-compatible runtime (`#thread`): there is no
 * foreign-function interface, so no epoll plane; the proxy runs the runtime's sockets instead.
 */
import process from "node:process";
import type { Libc } from "./libc.ts";

export function loadLibc(): Promise<Libc | null> {
  return Promise.resolve(null);
}

export const arch: string = process.arch;

export const canReleaseMemory = false;

export function releaseMemory(): void {}

export function collectGarbage(): void {}
