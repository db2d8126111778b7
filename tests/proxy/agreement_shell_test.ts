import { describe, expect, test } from "bun:test";
import type { AgreementEvent } from "../../src/core/agreement.ts";
import { AgreementShell } from "../../src/proxy/agreement_shell.ts";

/** A shell that notes the wall clock of every tick it is fed. */
class TickLog extends AgreementShell {
  ticks: number[] = [];
  override feed(event: AgreementEvent): void {
    if (event.type === "tick") this.ticks.push(Date.now());
    super.feed(event);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the agreement shell's ticks", () => {
  test("land on the wall clock's multiples of the tick, wherever the shell started", async () => {
    const tickMs = 100;
    const shell = new TickLog({
      config: {
        self: "p1",
        cluster: "c",
        mode: "none",
        voters: ["p1"],
        peers: [],
        backends: ["db0"],
        timers: { leaseMs: 2000, marginMs: 200, guardMs: 300, settleMs: 2000, startupHoldMs: 0 },
      },
      tickMs,
      transport: null,
    }, { route() {}, sever() {} });
    // Started half a tick past a multiple: ticks every tickMs from the start would stay there.
    while (Date.now() % tickMs < 40 || Date.now() % tickMs >= 60) await sleep(1);
    shell.start();
    try {
      while (shell.ticks.length < 6) await sleep(10);
    } finally {
      shell.stop();
    }
    const phases = shell.ticks.slice(1).map((t) => t % tickMs);
    // A timer may fire late on a loaded machine, but not most of them by nearly half a tick.
    expect(phases.filter((p) => p < 30).length).toBeGreaterThanOrEqual(3);
    const stopped = shell.ticks.length;
    await sleep(2 * tickMs);
    expect(shell.ticks.length).toBe(stopped);
  });
});
