import { describe, expect, test } from "bun:test";
import { chooseReader, type ReaderCandidate, severReader } from "../../src/core/reader_choice.ts";

const n = (name: string, sessions = 0, healthy = true, drained = false): ReaderCandidate => ({
  name,
  healthy,
  drained,
  sessions,
});

describe("chooseReader()", () => {
  test("never the active node; the fewest reader sessions first, ties by name", () => {
    expect(chooseReader([n("db0"), n("db1", 3), n("db2", 1)], "db0", "active")).toEqual({
      node: "db2",
      fallback: false,
    });
    expect(chooseReader([n("db2", 1), n("db1", 1), n("db0")], "db0", "refuse").node).toBe("db1");
  });

  test("unhealthy and drained nodes are left out", () => {
    const nodes = [n("db0"), n("db1", 0, false), n("db2", 5, true, true), n("db3", 9)];
    expect(chooseReader(nodes, "db0", "refuse").node).toBe("db3");
  });

  test("no other node: the active one (fallback active), or a refusal naming it (refuse)", () => {
    const nodes = [n("db0"), n("db1", 0, false)];
    expect(chooseReader(nodes, "db0", "active")).toEqual({ node: "db0", fallback: true });
    expect(chooseReader(nodes, "db0", "refuse")).toEqual({
      node: null,
      reason: "no_reader",
      message: "no healthy node but the active one (db0), and --reader-fallback is refuse",
    });
  });

  test("nothing healthy at all", () => {
    expect(chooseReader([n("db0", 0, false)], "db0", "active")).toEqual({
      node: null,
      reason: "no_active_node",
      message: "no healthy Galera node to read from",
    });
  });

  test("without a known active node every healthy node reads", () => {
    expect(chooseReader([n("db1", 2), n("db0", 2)], null, "refuse").node).toBe("db0");
  });
});

describe("severReader()", () => {
  test("gone, unhealthy, drained; the active node only with refuse", () => {
    expect(severReader(undefined, "db0", "active")).toBe("it left the configuration");
    expect(severReader(n("db1", 1, false), "db0", "active")).toBe("it is unhealthy");
    expect(severReader(n("db1", 1, true, true), "db0", "active")).toBe("it is drained");
    expect(severReader(n("db0"), "db0", "active")).toBeNull();
    expect(severReader(n("db0"), "db0", "refuse")).toBe(
      "it became the active node (--reader-fallback refuse)",
    );
    expect(severReader(n("db1"), "db0", "refuse")).toBeNull();
  });
});
