import { describe, expect, test } from "bun:test";
import { floodGuard, refused, tick } from "../../src/peers/flood_guard.ts";

const CONFIG = { floodPerSecond: 100, holdMs: 5000 };

function refuse(guard: ReturnType<typeof floodGuard>, times: number, at: number) {
  for (let i = 0; i < times; i++) guard = refused(guard, at, CONFIG);
  return guard;
}

describe("flood guard", () => {
  test("tightens once a second's refusals reach a flood's rate", () => {
    expect(refuse(floodGuard(0, 0), 99, 10).strict).toBe(false);
    expect(refuse(floodGuard(0, 0), 100, 10).strict).toBe(true);
  });

  test("refusals spread over seconds never add up to a flood", () => {
    let guard = floodGuard(0, 0);
    for (let second = 0; second < 20; second++) guard = refuse(guard, 99, second * 1000 + 1);
    expect(guard.strict).toBe(false);
  });

  test("stays strict while the kernel drops at a flood's rate, loosens after the hold", () => {
    let guard = refuse(floodGuard(0, 0), 100, 0);
    let drops = 0;
    for (let t = 1000; t <= 20_000; t += 1000) {
      drops += 500; // the flood goes on, now dropped by the kernel
      guard = tick(guard, t, drops, CONFIG);
      expect(guard.strict).toBe(true);
    }
    for (let t = 21_000; t < 25_000; t += 1000) {
      guard = tick(guard, t, drops + 10, CONFIG); // a trickle, not a flood
      expect(guard.strict).toBe(true);
    }
    guard = tick(guard, 25_000, drops + 10, CONFIG);
    expect(guard.strict).toBe(false);
    expect(guard.refused).toBe(0);
  });

  test("open, the kernel's drops (a full buffer) do not tighten it", () => {
    let guard = floodGuard(0, 0);
    guard = tick(guard, 1000, 1_000_000, CONFIG);
    expect(guard.strict).toBe(false);
    expect(guard.drops).toBe(1_000_000);
  });
});
