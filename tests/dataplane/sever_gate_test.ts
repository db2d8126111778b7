import { describe, expect, test } from "bun:test";
import { SEVER_GATE_MS, SeverGate } from "../../src/dataplane/sever_gate.ts";

const wallNow = () => performance.timeOrigin + performance.now();

describe("SeverGate: threads handed one sever close their clients once all cut their nodes", () => {
  test("a thread alone does not wait", () => {
    const gate = new SeverGate();
    gate.entered();
    const t0 = performance.now();
    gate.cut();
    expect(performance.now() - t0).toBeLessThan(SEVER_GATE_MS);
    expect(gate.counter[0]).toBe(0);
  });

  test("the first thread to cut waits for the last, in another thread", async () => {
    const gate = new SeverGate();
    gate.entered();
    gate.entered();
    const worker = new Worker(new URL("./sever_gate_worker.ts", import.meta.url));
    try {
      const said: unknown[] = [];
      let heard!: () => void;
      worker.onmessage = (event) => (said.push(event.data), heard?.());
      const next = () => new Promise<void>((resolve) => (heard = resolve));
      let waiting = next();
      worker.postMessage(gate.counter.buffer);
      await waiting;
      expect(said).toEqual(["cutting"]);
      // The worker is blocked until this thread cuts too.
      await Bun.sleep(30);
      expect(said).toHaveLength(1);
      waiting = next();
      const cutAt = wallNow();
      gate.cut();
      await waiting;
      expect(said[1] as number).toBeGreaterThanOrEqual(cutAt - 1);
      expect(gate.counter[0]).toBe(0);
    } finally {
      worker.terminate();
    }
  });

  test("a thread that never cuts holds the others no longer than the deadline", () => {
    const gate = new SeverGate();
    gate.entered();
    gate.entered();
    const t0 = performance.now();
    gate.cut();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(SEVER_GATE_MS - 1);
    expect(gate.counter[0]).toBe(1);
  });

  test("a clear (a failed thread replaced) forgives what was owed; a late cut leaves nothing owed", () => {
    const gate = new SeverGate();
    gate.entered();
    gate.entered();
    gate.clear();
    const t0 = performance.now();
    gate.cut();
    expect(performance.now() - t0).toBeLessThan(SEVER_GATE_MS);
    expect(gate.counter[0]).toBe(0);
    gate.entered();
    gate.cut();
    expect(gate.counter[0]).toBe(0);
  });
});
