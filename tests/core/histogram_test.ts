import { describe, expect, test } from "bun:test";
import { histogram, histogramLines, observe } from "../../src/core/histogram.ts";

describe("histogram", () => {
  test("cumulative buckets, +Inf, sum and count, as Prometheus reads them", () => {
    const h = histogram([0.1, 1]);
    for (const v of [0.05, 0.5, 3]) observe(h, v);
    const label = (l: Record<string, string>) =>
      Object.keys(l).length
        ? `{${Object.entries(l).map(([k, v]) => `${k}="${v}"`).join(",")}}`
        : "";
    expect(histogramLines("x_seconds", { backend: "db0" }, h, label)).toEqual([
      'x_seconds_bucket{backend="db0",le="0.1"} 1',
      'x_seconds_bucket{backend="db0",le="1"} 2',
      'x_seconds_bucket{backend="db0",le="+Inf"} 3',
      'x_seconds_sum{backend="db0"} 3.55',
      'x_seconds_count{backend="db0"} 3',
    ]);
  });
});
