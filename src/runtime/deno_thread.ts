/**
 * What a data-plane thread needs of Deno (`#thread`): glibc's socket calls through
 * `Deno.dlopen` (libc.ts), the CPU architecture, and heap release (none: V8 manages its own
 * heap). A module apart from deno.ts, so an epoll thread loads nothing else of the adapter.
 */
import { type Libc, LIBC_SYMBOLS, type LibcKind } from "./libc.ts";

const DENO_KINDS: Record<LibcKind, Deno.NativeType> = {
  i32: "i32",
  u32: "u32",
  usize: "usize",
  buf: "buffer",
};

type Native = (...args: unknown[]) => unknown;

/**
 * Deno takes a `usize` argument on its fast path only as a BigInt: given a number, the call
 * goes the slow way, which costs about as much as the syscall itself (docs/BENCHMARKS.md).
 * Lengths stay numbers for the callers; these wrappers convert them, and V8 inlines them.
 */
function widenSizes(fn: Native, kinds: readonly LibcKind[]): Native {
  const at = kinds.indexOf("usize");
  if (at < 0) return fn;
  if (at === 2 && kinds.length === 3) return (a, b, c) => fn(a, b, BigInt(c as number));
  if (at === 2 && kinds.length === 4) return (a, b, c, d) => fn(a, b, BigInt(c as number), d);
  if (at === 2 && kinds.length === 6) {
    return (a, b, c, d, e, f) => fn(a, b, BigInt(c as number), d, e, f);
  }
  throw new Error(`no usize wrapper for ${kinds.join(", ")}`);
}

/** glibc's socket calls through `Deno.dlopen`, for the epoll data plane; null off Linux/glibc. */
export function loadLibc(): Promise<Libc | null> {
  if (Deno.build.os !== "linux") return Promise.resolve(null);
  try {
    const declarations: Record<string, Deno.ForeignFunction> = {
      __errno_location: { parameters: [], result: "pointer" },
    };
    for (const [name, [args, result]] of Object.entries(LIBC_SYMBOLS)) {
      declarations[name] = {
        parameters: args.map((k) => DENO_KINDS[k]),
        result: DENO_KINDS[result] as Deno.NativeResultType,
      };
    }
    const symbols = Deno.dlopen("libc.so.6", declarations).symbols as Record<string, Native>;
    for (const [name, [args]] of Object.entries(LIBC_SYMBOLS)) {
      symbols[name] = widenSizes(symbols[name], args);
    }
    const errnoAt = symbols.__errno_location() as Deno.PointerObject;
    const view = new Deno.UnsafePointerView(errnoAt);
    return Promise.resolve(
      Object.assign(Object.create(null), symbols, {
        errno: () => view.getInt32(0),
        address: (buffer: Uint8Array) =>
          BigInt(
            Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer as Uint8Array<ArrayBuffer>)),
          ),
      }) as Libc,
    );
  } catch {
    return Promise.resolve(null);
  }
}

/** The CPU architecture ("x86_64", "aarch64"): the epoll_event layout depends on it. */
export const arch: string = Deno.build.arch;

/** V8 gives no hook to trim its heap: releasing memory does nothing here. */
export const canReleaseMemory = false;

export function releaseMemory(): void {}

export function collectGarbage(): void {}
