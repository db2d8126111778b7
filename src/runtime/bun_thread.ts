/**
 * What a data-plane thread needs of Bun (`#thread`): glibc's socket calls through `bun:ffi`
 * (libc.ts), the CPU architecture, and heap release. A module apart from bun.ts, so an epoll
 * thread loads nothing else of the runtime adapter.
 */
import { type Libc, LIBC_SYMBOLS, type LibcKind } from "./libc.ts";

/** The part of `bun:ffi` used here, typed locally so `deno check` needs no Bun types. */
interface BunFfi {
  dlopen(
    path: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): { symbols: Record<string, (...args: unknown[]) => unknown> };
  read: { i32(pointer: number, offset: number): number };
  ptr(buffer: Uint8Array): number;
}

const BUN_KINDS: Record<LibcKind, string> = { i32: "i32", u32: "u32", usize: "u64", buf: "ptr" };

/** glibc's socket calls through `bun:ffi`, for the epoll data plane; null off Linux/glibc. */
export async function loadLibc(): Promise<Libc | null> {
  if (process.platform !== "linux") return null;
  try {
    const ffi = await import("bun:ffi" as string) as BunFfi;
    const declarations: Record<string, { args: string[]; returns: string }> = {
      __errno_location: { args: [], returns: "ptr" },
    };
    for (const [name, [args, result]] of Object.entries(LIBC_SYMBOLS)) {
      declarations[name] = { args: args.map((k) => BUN_KINDS[k]), returns: BUN_KINDS[result] };
    }
    const symbols = ffi.dlopen("libc.so.6", declarations).symbols;
    const errnoAt = symbols.__errno_location() as number;
    const read = ffi.read;
    return Object.assign(Object.create(null), symbols, {
      errno: () => read.i32(errnoAt, 0),
      address: (buffer: Uint8Array) => BigInt(ffi.ptr(buffer)),
    }) as Libc;
  } catch {
    return null;
  }
}

/** The CPU architecture as Node names it ("x64", "arm64"): the epoll_event layout depends on it. */
export const arch: string = process.arch;

/** The part of Bun's heap API used here. */
interface BunMemory {
  gc(force: boolean): void;
  shrink?(): void;
}

const bun = (globalThis as unknown as { Bun: BunMemory }).Bun;

/** Whether releasing memory does anything here (JavaScriptCore's "shrink footprint"). */
export const canReleaseMemory: boolean = typeof bun.shrink === "function";

/** Collects and trims the current thread's heap (drop compiled code, return allocator pages). */
export function releaseMemory(): void {
  if (!bun.shrink) return;
  bun.gc(true);
  bun.shrink();
}

/** A full collection of the current thread's heap, compiled code kept. */
export function collectGarbage(): void {
  bun.gc(true);
}
