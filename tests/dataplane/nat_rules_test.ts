import { describe, expect, test } from "bun:test";
import {
  BLESSED,
  counterCommands,
  FLOW_MARK,
  flowMark,
  guardTable,
  MAX_GENERATION,
  nextGeneration,
  routeDrain,
  routeSwap,
  routeTable,
} from "../../src/dataplane/nat_rules.ts";

const listen = { host: "10.9.0.1", port: 4306 };
const hex = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;

describe("flowMark and generations", () => {
  test("a generation lives in the low 24 bits under galerad's byte", () => {
    expect(flowMark(1)).toBe(FLOW_MARK + 1);
    expect(flowMark(MAX_GENERATION) >>> 24).toBe(FLOW_MARK >>> 24);
  });

  test("generations outside 1..2^24-1 are refused, quoting the value", () => {
    for (const g of [0, -1, 1.5, MAX_GENERATION + 1, Number.NaN]) {
      expect(() => flowMark(g)).toThrow(`got ${g}`);
    }
  });

  test("the next generation wraps past the top to 1, never 0", () => {
    expect(nextGeneration(1)).toBe(2);
    expect(nextGeneration(MAX_GENERATION)).toBe(1);
  });
});

describe("routeTable", () => {
  test("the route table is owned, so it dies with the nft process that made it", () => {
    expect(routeTable("gr")[0]).toBe("add table ip gr { flags owner; }");
  });

  test("only galerad's marked flows are masqueraded; pokes are never tracked", () => {
    const text = routeTable("gr").join("\n");
    expect(text).toContain(`ct mark and 0xff000000 == ${hex(FLOW_MARK)} masquerade`);
    expect(text).toContain("meta mark 0x00006a1e notrack");
    expect(text).toContain("hook output priority raw");
  });
});

describe("routeSwap", () => {
  test("one line: the DNAT and the blessing name the same generation", () => {
    const line = routeSwap("gr", listen, 7, { node: { host: "10.9.1.2", port: 3306 } });
    expect(line).not.toContain("\n");
    const mark = hex(flowMark(7));
    expect(line).toContain(
      `ip daddr 10.9.0.1 tcp dport 4306 ct mark set ${mark} dnat to 10.9.1.2:3306`,
    );
    expect(line).toContain(`forward ct mark ${mark} meta mark set ${hex(BLESSED)}`);
  });

  test("both chains are flushed first, so an older generation is never blessed again", () => {
    const parts = routeSwap("gr", listen, 2, { node: { host: "10.9.1.2", port: 3306 } })
      .split("; ");
    expect(parts.slice(0, 2)).toEqual([
      "flush chain ip gr prerouting",
      "flush chain ip gr forward",
    ]);
    expect(parts.filter((p) => p.startsWith("add rule"))).toHaveLength(2);
  });

  test("with a node's counters: new flows and each direction's bytes are counted by name", () => {
    const line = routeSwap("gr", listen, 4, { node: { host: "10.9.1.2", port: 3306 }, counter: 1 });
    expect(line).toContain("tcp dport 4306 counter name new_1 ct mark set");
    expect(line).toContain("ct direction original counter name up_1 meta mark set");
    expect(line).toContain("ct direction reply counter name down_1 meta mark set");
    expect(counterCommands("gr", 1)).toBe(
      "add counter ip gr new_1; add counter ip gr up_1; add counter ip gr down_1",
    );
  });

  test("a wildcard listen address matches every local address", () => {
    const line = routeSwap("gr", { host: "0.0.0.0", port: 4306 }, 1, {
      node: { host: "10.9.1.2", port: 3306 },
    });
    expect(line).toContain("prerouting fib daddr type local tcp dport 4306 ct mark set");
  });

  test("nowhere: both chains flushed, nothing routed, nothing blessed", () => {
    expect(routeSwap("gr", listen, 5, null)).toBe(
      "flush chain ip gr prerouting; flush chain ip gr forward",
    );
  });

  test("a drain stops new flows only", () => {
    expect(routeDrain("gr")).toBe("flush chain ip gr prerouting");
  });
});

describe("guardTable", () => {
  test("resets galerad's flows whose packets are not blessed, in a table not owned", () => {
    const text = guardTable("grg");
    expect(text).not.toContain("owner");
    expect(text).toContain(
      `ct mark and 0xff000000 == ${hex(FLOW_MARK)} meta mark != ${
        hex(BLESSED)
      } reject with tcp reset`,
    );
  });
});
