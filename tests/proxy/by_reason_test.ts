import { describe, expect, test } from "bun:test";
import { DROP_REASONS } from "../../src/peers/codec.ts";
import { byReason } from "../../src/proxy/by_reason.ts";
import { READER_REFUSALS, WRITER_REFUSALS } from "../../src/proxy/refusal.ts";

describe("byReason", () => {
  test("every reason is there from the start, at zero", () => {
    for (const reasons of [WRITER_REFUSALS, READER_REFUSALS, DROP_REASONS]) {
      const out = byReason<string>(reasons, {});
      expect(out.map(([l]) => l.reason).sort()).toEqual([...reasons].sort());
      expect(out.every(([, n]) => n === 0)).toBe(true);
    }
  });

  test("counted reasons keep their counts, one series each", () => {
    const counted: Record<string, number> = { no_reader: 3, minority: 2 };
    const out = new Map(byReason<string>(READER_REFUSALS, counted).map(([l, n]) => [l.reason, n]));
    expect(out.get("no_reader")).toBe(3);
    expect(out.get("shutdown")).toBe(0);
    // A reason counted though not in the list is still exported.
    expect(out.get("minority")).toBe(2);
    expect(out.size).toBe(READER_REFUSALS.length + 1);
  });
});
