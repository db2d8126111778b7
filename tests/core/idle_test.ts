import { describe, expect, test } from "bun:test";
import { checkIdle, idleMark, mayTurnIdle } from "../../src/core/idle.ts";

const limits = { clientIdleMs: 1000, backendIdleMs: 3000, greetingMs: 500, reportLagMs: 0 };

describe("checkIdle()", () => {
  test("a backend that never sent a byte failed to connect after the greeting time", () => {
    const m = idleMark(0);
    expect(checkIdle(m, { up: 0, down: 0 }, 499, limits).verdict).toBeNull();
    expect(checkIdle(m, { up: 0, down: 0 }, 500, limits).verdict).toBe("no greeting");
  });

  test("each side's silence against its own limit; bytes reset the clock", () => {
    let { mark } = checkIdle(idleMark(0), { up: 0, down: 78 }, 100, limits);
    ({ mark } = checkIdle(mark, { up: 50, down: 78 }, 900, limits));
    expect(checkIdle(mark, { up: 50, down: 78 }, 1899, limits).verdict).toBeNull();
    expect(checkIdle(mark, { up: 50, down: 78 }, 1900, limits).verdict).toBe("client idle");
    const chatty = { clientIdleMs: 0, backendIdleMs: 3000, greetingMs: 500, reportLagMs: 0 };
    expect(checkIdle(mark, { up: 60, down: 78 }, 3100, chatty).verdict).toBe("backend idle");
  });

  test("stale counts: silence counts only beyond the limit plus the report lag", () => {
    const lagged = { ...limits, reportLagMs: 1500 };
    expect(checkIdle(idleMark(0), { up: 0, down: 9 }, 2400, lagged).verdict).toBeNull();
    expect(checkIdle(idleMark(0), { up: 0, down: 9 }, 2500, lagged).verdict).toBe("client idle");
    expect(checkIdle(idleMark(0), { up: 0, down: 0 }, 1999, lagged).verdict).toBeNull();
  });

  test("a check that finds nothing moved keeps the mark it was given", () => {
    const { mark } = checkIdle(idleMark(0), { up: 0, down: 9 }, 100, limits);
    expect(checkIdle(mark, { up: 0, down: 9 }, 200, limits).mark).toBe(mark);
    expect(checkIdle(mark, { up: 1, down: 9 }, 200, limits).mark).not.toBe(mark);
  });

  test("limits of 0 never close a session that got its greeting", () => {
    const off = { clientIdleMs: 0, backendIdleMs: 0, greetingMs: 0, reportLagMs: 0 };
    expect(checkIdle(idleMark(0), { up: 0, down: 0 }, 1e9, off).verdict).toBeNull();
  });
});

describe("mayTurnIdle()", () => {
  const off = { clientIdleMs: 0, backendIdleMs: 0, greetingMs: 500, reportLagMs: 0 };
  test("with both idle limits off, only a session still without its greeting", () => {
    expect(mayTurnIdle({ down: 0 }, off)).toBe(true);
    expect(mayTurnIdle({ down: 78 }, off)).toBe(false);
    expect(mayTurnIdle({ down: 0 }, { ...off, greetingMs: 0 })).toBe(false);
  });

  test("with an idle limit, every session", () => {
    expect(mayTurnIdle({ down: 78 }, { ...off, clientIdleMs: 1000 })).toBe(true);
    expect(mayTurnIdle({ down: 78 }, { ...off, backendIdleMs: 1000 })).toBe(true);
  });

  test("agrees with checkIdle: what it passes over, checkIdle would never close", () => {
    for (const down of [0, 9]) {
      for (const greetingMs of [0, 500]) {
        const l = { ...off, greetingMs };
        if (mayTurnIdle({ down }, l)) continue;
        expect(checkIdle(idleMark(0), { up: 0, down }, 1e9, l).verdict).toBeNull();
      }
    }
  });
});
