/**
 * The runtime seam holds: only src/runtime/ may touch `Bun` or `Deno` (everything else goes
 * through `#runtime` / `#ffi`), so a second runtime never needs a change outside it.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { ROOT } from "../helpers/spawn.ts";

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? files(full) : /\.tsx?$/.test(name) ? [full] : [];
  });
}

describe("runtime seam", () => {
  test("no file outside src/runtime/ names Bun or Deno", () => {
    const offenders: string[] = [];
    for (const file of files(path.join(ROOT, "src"))) {
      const rel = path.relative(ROOT, file);
      if (rel.startsWith(path.join("src", "runtime") + path.sep)) continue;
      const text = readFileSync(file, "utf8")
        .replace(/\/\*[\s\S]*?\*\//g, "")
        .replace(/\/\/.*$/gm, "");
      for (const [i, line] of text.split("\n").entries()) {
        if (/\b(Bun|Deno)\s*[.[]|globalThis\s*(\.|\[\s*["'])(Bun|Deno)\b/.test(line)) {
          offenders.push(`${rel}:${i + 1}: ${line.trim()}`);
        }
      }
    }
    expect(offenders).toEqual([]);
  });
});
