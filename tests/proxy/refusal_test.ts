import { describe, expect, test } from "bun:test";
import { READER_REFUSALS, refusalCounts, WRITER_REFUSALS } from "../../src/proxy/refusal.ts";

describe("refusalCounts", () => {
  test("every reason of the port is there from the start, at zero", () => {
    const out = refusalCounts(WRITER_REFUSALS, {});
    expect(out.map(([l]) => l.reason).sort()).toEqual([...WRITER_REFUSALS].sort());
    expect(out.every(([, n]) => n === 0)).toBe(true);
  });

  test("counted reasons keep their counts, one series each", () => {
    const out = new Map(
      refusalCounts(READER_REFUSALS, { no_reader: 3, minority: 2 }).map(([l, n]) => [l.reason, n]),
    );
    expect(out.get("no_reader")).toBe(3);
    expect(out.get("shutdown")).toBe(0);
    // A reason counted on this port though not in its list is still exported.
    expect(out.get("minority")).toBe(2);
    expect(out.size).toBe(READER_REFUSALS.length + 1);
  });
});
