import { describe, expect, test } from "bun:test";
import {
  AUTO_MAX_THREADS,
  demand,
  parseSchedstat,
  shouldGrow,
  threadPlan,
} from "../../src/core/threads.ts";

describe("threadPlan()", () => {
  test("a count is what runs, from start to end", () => {
    expect(threadPlan(3, 8)).toEqual({ threads: 3, maxThreads: 3 });
    expect(threadPlan(12, 2)).toEqual({ threads: 12, maxThreads: 12 });
  });

  test("auto starts with two and may grow to one per CPU", () => {
    expect(threadPlan(0, 2)).toEqual({ threads: 2, maxThreads: 2 });
    expect(threadPlan(0, 8)).toEqual({ threads: 2, maxThreads: 8 });
  });

  test("auto on one CPU is one thread; on many, at most AUTO_MAX_THREADS", () => {
    expect(threadPlan(0, 1)).toEqual({ threads: 1, maxThreads: 1 });
    expect(threadPlan(0, 0)).toEqual({ threads: 1, maxThreads: 1 });
    expect(threadPlan(0, 64)).toEqual({ threads: 2, maxThreads: AUTO_MAX_THREADS });
  });
});

describe("parseSchedstat()", () => {
  test("reads the run and wait nanoseconds", () => {
    expect(parseSchedstat("5938340277 16671441045 138093\n")).toEqual({
      runNs: 5938340277,
      waitNs: 16671441045,
    });
  });

  test("anything else is null", () => {
    for (const text of ["", "12", "a b c", "-1 2 3"]) expect(parseSchedstat(text)).toBeNull();
  });
});

describe("demand()", () => {
  const start = { runNs: 1e9, waitNs: 2e9 };

  test("time on a CPU plus time waiting for one, over the wall time", () => {
    expect(demand(start, { runNs: 1.5e9, waitNs: 2.25e9 }, 1e9)).toBeCloseTo(0.75);
    // More than one: impossible for one thread, but readings are not taken at the same instant.
    expect(demand(start, { runNs: 2e9, waitNs: 2.5e9 }, 1e9)).toBeCloseTo(1.5);
  });

  test("an empty window or a reading that went backwards is no demand", () => {
    expect(demand(start, { runNs: 2e9, waitNs: 3e9 }, 0)).toBe(0);
    expect(demand(start, { runNs: 0, waitNs: 0 }, 1e9)).toBe(0);
  });
});

describe("shouldGrow()", () => {
  test("grows while the threads' mean demand is at least a half", () => {
    expect(shouldGrow([0.5, 0.5], 2, 4)).toBe(true);
    expect(shouldGrow([0.9, 0.2], 2, 4)).toBe(true);
    expect(shouldGrow([0.9, 0.05], 2, 4)).toBe(false);
    expect(shouldGrow([0.1, 0.1, 0.1], 3, 4)).toBe(false);
  });

  test("never past the maximum, and not without readings", () => {
    expect(shouldGrow([1, 1], 2, 2)).toBe(false);
    expect(shouldGrow([1, 1, 1], 3, 2)).toBe(false);
    expect(shouldGrow([], 2, 4)).toBe(false);
  });
});
