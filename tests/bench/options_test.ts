import { describe, expect, test } from "bun:test";
import path from "node:path";

const ROOT = path.resolve(import.meta.dir, "../..");

/** Runs a benchmark script with `args`; bad options must stop it before any lab starts. */
function run(script: string, args: string[]) {
  const r = Bun.spawnSync([process.execPath, path.join(ROOT, "scripts/bench", script), ...args], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
    timeout: 30_000,
  });
  return { code: r.exitCode, stderr: r.stderr.toString(), stdout: r.stdout.toString() };
}

describe("benchmark options", () => {
  const cases: [string, string[], RegExp][] = [
    ["throughput.ts", ["--rounds", "x"], /^--rounds: expected a whole number of at least 1, got x/],
    ["throughput.ts", ["--rounds", "0"], /^--rounds: expected a whole number of at least 1, got 0/],
    ["throughput.ts", ["--seconds"], /^--seconds: expected a whole number .*got nothing/],
    ["throughput.ts", ["--soak", "-5"], /^--soak: expected a whole number of at least 0, got -5/],
    ["throughput.ts", ["--round", "3"], /^unknown argument '--round'/],
    ["failover.ts", ["--runs", "2.5"], /^--runs: expected a whole number of at least 1, got 2.5/],
    ["convergence.ts", ["changes"], /^unknown argument 'changes'/],
  ];
  for (const [script, args, message] of cases) {
    test(`${script} ${args.join(" ")}: one line naming the option, exit 2`, () => {
      const r = run(script, args);
      expect(r.code).toBe(2);
      const lines = r.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(message);
      expect(lines[0]).toContain("usage:");
      expect(r.stdout).toBe("");
    });
  }
});

describe("round order", () => {
  test("every other round runs the targets in reverse, so none always runs first", async () => {
    const { roundOrder } = await import("../../scripts/bench/report.ts");
    const targets = ["galerad", "haproxy", "direct"];
    expect([0, 1, 2, 3].map((round) => roundOrder(targets, round).join(" "))).toEqual([
      "galerad haproxy direct",
      "direct haproxy galerad",
      "galerad haproxy direct",
      "direct haproxy galerad",
    ]);
    expect(targets).toEqual(["galerad", "haproxy", "direct"]); // not reordered in place
  });
});
