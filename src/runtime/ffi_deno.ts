/**
 * glibc's socket calls through `Deno.dlopen`, for the epoll data plane (libc.ts,
 * epoll_worker.ts). A module of its own (`#ffi`), so an epoll thread loads nothing else of the
 * runtime adapter.
 */
import { type Libc, LIBC_SYMBOLS, type LibcKind } from "./libc.ts";

const DENO_KINDS: Record<LibcKind, Deno.NativeType> = {
  i32: "i32",
  u32: "u32",
  usize: "usize",
  buf: "buffer",
};

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
    const symbols = Deno.dlopen("libc.so.6", declarations).symbols as Record<
      string,
      (...args: unknown[]) => unknown
    >;
    const errnoAt = symbols.__errno_location() as Deno.PointerObject;
    const view = new Deno.UnsafePointerView(errnoAt);
    return Promise.resolve(
      Object.assign(Object.create(null), symbols, { errno: () => view.getInt32(0) }) as Libc,
    );
  } catch {
    return Promise.resolve(null);
  }
}
