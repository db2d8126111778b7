import { describe, expect, test } from "bun:test";
import { checkIdle, idleMark } from "../../src/core/idle.ts";

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

  test("limits of 0 never close a session that got its greeting", () => {
    const off = { clientIdleMs: 0, backendIdleMs: 0, greetingMs: 0, reportLagMs: 0 };
    expect(checkIdle(idleMark(0), { up: 0, down: 0 }, 1e9, off).verdict).toBeNull();
  });
});
