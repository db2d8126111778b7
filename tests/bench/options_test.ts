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
    const targets = ["galerad", "haproxy", "deno", "direct"];
    const rounds = [0, 1, 2, 3].map((round) => roundOrder(targets, round));
    expect(rounds.map((order) => order.join(" "))).toEqual([
      "galerad haproxy deno direct",
      "deno haproxy galerad direct",
      "galerad haproxy deno direct",
      "deno haproxy galerad direct",
    ]);
    // No target runs twice in a row across a round's end.
    const sequence = rounds.flat();
    for (let i = 1; i < sequence.length; i++) expect(sequence[i]).not.toBe(sequence[i - 1]);
    expect(targets).toEqual(["galerad", "haproxy", "deno", "direct"]); // not reordered in place
    expect(roundOrder(["only"], 1)).toEqual(["only"]);
  });
});

describe("runBench", () => {
  const fixture = path.join(ROOT, "tests/bench/fixtures/run_bench.ts");

  test("stops what the bench started, last first, when it finishes or fails", () => {
    for (
      const [mode, code, stderr] of [["ok", 0, ""], [
        "fail",
        1,
        "bench failed: sysbench not found\n",
      ]] as const
    ) {
      const r = Bun.spawnSync([process.execPath, fixture, mode], {
        stdout: "pipe",
        stderr: "pipe",
      });
      expect(r.exitCode).toBe(code);
      expect(r.stdout.toString()).toBe("stopped proxy\nstopped lab\n");
      expect(r.stderr.toString()).toBe(stderr);
    }
  });

  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    test(`stops what the bench started on ${signal} and exits ${code}`, async () => {
      const child = Bun.spawn([process.execPath, fixture, "wait"], {
        stdout: "pipe",
        stderr: "pipe",
      });
      const reader = child.stdout.getReader();
      let out = "";
      while (!out.includes("running")) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      child.kill(signal);
      expect(await child.exited).toBe(code);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      expect(out).toBe("running\nstopped proxy\nstopped lab\n");
      expect(await new Response(child.stderr).text()).toBe(
        `${signal}: stopping what the bench started\n`,
      );
    });
  }
});
