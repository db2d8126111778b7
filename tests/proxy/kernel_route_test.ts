import { describe, expect, test } from "bun:test";
import type { KernelFlows, KernelNode, NftPath } from "../../src/dataplane/nft_path.ts";
import { KernelRoute } from "../../src/proxy/kernel_route.ts";

/** A kernel path that records what it is asked and answers when told to. */
function fakePath(stale = 0) {
  const calls: string[] = [];
  let gate: (() => void) | null = null;
  let held = false;
  const wait = () => held ? new Promise<void>((r) => (gate = r)) : Promise.resolve();
  const path = {
    onLost: null,
    point: async (node: KernelNode | null) => {
      calls.push(`point ${node?.name ?? "nowhere"}`);
      await wait();
    },
    drain: async () => {
      calls.push("drain");
      await wait();
    },
    wakeStale: () => {
      calls.push("wake");
      return Promise.resolve({ cut: stale, left: 0 });
    },
    counts: () => Promise.resolve(new Map<string, KernelFlows>()),
    close: () => {
      calls.push("close");
      return Promise.resolve();
    },
  };
  return {
    path: path as unknown as NftPath,
    calls,
    hold: () => (held = true),
    release: () => {
      held = false;
      gate?.();
    },
  };
}

const db0 = { name: "db0", host: "10.0.0.1", port: 3306 };
const db1 = { name: "db1", host: "10.0.0.2", port: 3306 };
const settle = () => new Promise((r) => setTimeout(r, 5));

describe("KernelRoute", () => {
  test("route, hold and cut map to point, drain and point(nowhere); repeats change nothing", async () => {
    const fake = fakePath();
    const route = new KernelRoute(fake.path, () => {});
    route.want({ mode: "route", node: db0 });
    route.want({ mode: "route", node: db0 });
    await settle();
    route.want({ mode: "hold" });
    await settle();
    route.want({ mode: "cut" });
    await settle();
    await route.close();
    expect(fake.calls.filter((c) => c !== "wake")).toEqual([
      "point db0",
      "drain",
      "point nowhere",
      "close",
    ]);
  });

  test("a node's flows count as carried until a change away from it is applied", async () => {
    const fake = fakePath();
    const route = new KernelRoute(fake.path, () => {});
    route.want({ mode: "route", node: db0 });
    await settle();
    expect(route.carries("db0")).toBe(true);
    fake.hold();
    route.want({ mode: "route", node: db1 });
    await settle();
    // Not applied yet: db0's flows may still pass.
    expect(route.carries("db0")).toBe(true);
    fake.release();
    await settle();
    expect(route.carries("db0")).toBe(false);
    expect(route.carries("db1")).toBe(true);
    await route.close();
  });

  test("a hold keeps the running flows carried; a cut does not", async () => {
    const fake = fakePath();
    const route = new KernelRoute(fake.path, () => {});
    route.want({ mode: "route", node: db0 });
    await settle();
    route.want({ mode: "hold" });
    await settle();
    expect(route.carries("db0")).toBe(true);
    route.want({ mode: "cut" });
    await settle();
    expect(route.carries("db0")).toBe(false);
    await route.close();
  });

  test("wishes made while a change is in flight: only the latest is applied after it", async () => {
    const fake = fakePath();
    const route = new KernelRoute(fake.path, () => {});
    fake.hold();
    route.want({ mode: "route", node: db0 });
    route.want({ mode: "cut" });
    route.want({ mode: "route", node: db1 });
    fake.release();
    await settle();
    expect(fake.calls.filter((c) => c.startsWith("point"))).toEqual(["point db0", "point db1"]);
    await route.close();
  });

  test("a change away from a node wakes its cut flows and reports them as severed", async () => {
    const fake = fakePath(3);
    const severed: number[] = [];
    const route = new KernelRoute(fake.path, (cut) => cut > 0 && severed.push(cut));
    route.want({ mode: "route", node: db0 });
    await settle();
    route.want({ mode: "route", node: db1 });
    await settle();
    expect(fake.calls).toContain("wake");
    expect(severed.at(-1)).toBe(3);
    await route.close();
  });
});
