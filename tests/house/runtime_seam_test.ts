/**
 * The runtime seam holds: `Bun` and `Deno` are touched only in the per-runtime files of
 * src/runtime/ — bun.ts and deno.ts (`#runtime`: sockets, HTTP, UDP, TLS fetch, threads) and
 * bun_thread.ts and deno_thread.ts (`#thread`: what an epoll thread needs, FFI and memory) —
 * so adding a runtime never needs a change anywhere else. Mentions in comments and strings
 * do not count.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { ROOT } from "../../scripts/lab/spawn.ts";

const SEAM = new Set(
  ["bun.ts", "deno.ts", "bun_thread.ts", "deno_thread.ts"].map((f) =>
    path.join("src", "runtime", f)
  ),
);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? files(full) : /\.tsx?$/.test(name) ? [full] : [];
  });
}

function withoutComments(text: string): string {
  // Block comments keep their line breaks, so line numbers still point at the file.
  return text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, "")).replace(/\/\/.*$/gm, "");
}

/** Lines of `text` that touch a runtime: its global, a cast to reach it, or a `bun:` module. */
function touches(text: string): number[] {
  const lines = withoutComments(text).split("\n");
  const found: number[] = [];
  for (const [i, line] of lines.entries()) {
    // String literals removed first: an error message may name a runtime.
    const bare = line.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`/g, '""');
    if (
      /\b(Bun|Deno)\s*[.[]/.test(bare) ||
      /globalThis\b.*\b(Bun|Deno)\b/.test(line) ||
      /["']bun:/.test(line)
    ) found.push(i + 1);
  }
  return found;
}

describe("runtime seam", () => {
  test("only the per-runtime files touch Bun or Deno", () => {
    const offenders: string[] = [];
    for (const file of files(path.join(ROOT, "src"))) {
      const rel = path.relative(ROOT, file);
      if (SEAM.has(rel)) continue;
      for (const line of touches(readFileSync(file, "utf8"))) offenders.push(`${rel}:${line}`);
    }
    expect(offenders).toEqual([]);
  });

  test("the check sees what it looks for", () => {
    const samples = [
      "const s = Bun.serve({});",
      "const b = (globalThis as { Bun?: X }).Bun;",
      "Deno.dlopen(path, {});",
      'const d = globalThis["Deno"];',
      'const ffi = await import("bun:ffi");',
    ];
    for (const sample of samples) expect(touches(sample)).toEqual([1]);
    expect(touches('throw new Error("needs Bun or Deno"); // Bun.serve')).toEqual([]);
  });
});
