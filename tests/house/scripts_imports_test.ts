/**
 * Benchmarks and the lab stand on their own: nothing under scripts/ imports from tests/, so a
 * test helper can change without moving a benchmark's figures (the shared lab is scripts/lab/).
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { ROOT } from "../../scripts/lab/spawn.ts";

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? files(full) : /\.tsx?$/.test(name) ? [full] : [];
  });
}

test("no file under scripts/ imports from tests/", () => {
  const offenders = files(path.join(ROOT, "scripts")).flatMap((file) =>
    readFileSync(file, "utf8").split("\n").flatMap((line, i) =>
      /^\s*(import|export)\b.*from\s+["'][^"']*\/tests\//.test(line) ||
        /import\(\s*["'][^"']*\/tests\//.test(line)
        ? [`${path.relative(ROOT, file)}:${i + 1}: ${line.trim()}`]
        : []
    )
  );
  expect(offenders).toEqual([]);
});
