import { describe, expect, test } from "bun:test";
import {
  applyProbe,
  type HealthState,
  initialHealth,
  type ProbeResult,
} from "../../src/core/health_state.ts";

const ok: ProbeResult = {
  ok: true,
  reason: "agent reports healthy",
  wsrepLocalIndex: 1,
  latencyMs: 1,
};
const bad: ProbeResult = { ok: false, reason: "agent answered 503", latencyMs: 1 };
const hyst = { rise: 3, fall: 2 };

function run(state: HealthState, probes: ProbeResult[], now = 1000) {
  const changes: string[] = [];
  for (const probe of probes) {
    const r = applyProbe(state, probe, { ...hyst, now });
    state = r.state;
    if (r.changed) changes.push(state.status);
  }
  return { state, changes };
}

describe("applyProbe()", () => {
  test("the first probe decides at once", () => {
    expect(run(initialHealth(), [ok]).state.status).toBe("healthy");
    expect(run(initialHealth(), [bad]).state.status).toBe("unhealthy");
  });

  test("a healthy node needs `fall` consecutive failures to go down", () => {
    const { state, changes } = run(initialHealth(), [ok, bad]);
    expect(state.status).toBe("healthy");
    expect(changes).toEqual(["healthy"]);
    const down = run(state, [bad]);
    expect(down.state.status).toBe("unhealthy");
    expect(down.state.reason).toBe("agent answered 503");
    expect(down.state.lastChange).toBe(1000);
  });

  test("a success between failures resets the count", () => {
    const { state } = run(initialHealth(), [ok, bad, ok, bad, ok, bad]);
    expect(state.status).toBe("healthy");
  });

  test("an unhealthy node needs `rise` consecutive successes to come back", () => {
    const start = run(initialHealth(), [bad]).state;
    expect(run(start, [ok, ok]).state.status).toBe("unhealthy");
    expect(run(start, [ok, ok, bad, ok, ok]).state.status).toBe("unhealthy");
    expect(run(start, [ok, ok, ok]).state.status).toBe("healthy");
  });

  test("keeps the last reported wsrep_local_index when a probe carries none", () => {
    const { state } = run(initialHealth(), [ok, { ...bad }]);
    expect(state.wsrepLocalIndex).toBe(1);
    expect(run(state, [{ ...ok, wsrepLocalIndex: 2 }]).state.wsrepLocalIndex).toBe(2);
  });
});
