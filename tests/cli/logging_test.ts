import { describe, expect, test } from "bun:test";
import type { LogRecord } from "@logtape/logtape";
import { jsonLine } from "../../src/cli/logging.ts";

function record(message: unknown[], properties: Record<string, unknown> = {}): LogRecord {
  return {
    category: ["galerad", "proxy"],
    level: "warning",
    message,
    rawMessage: "",
    properties,
    timestamp: Date.UTC(2026, 10, 22, 12, 0, 0),
  } as LogRecord;
}

describe("JSON Lines log format", () => {
  test("strings in the message stay bare; properties keep their types", () => {
    const line = jsonLine(
      record(["listening for clients on ", "127.0.0.1", ":", 3306, ""], {
        host: "127.0.0.1",
        port: 3306,
      }),
    );
    expect(line.endsWith("}\n")).toBe(true);
    expect(line.split("\n")).toHaveLength(2);
    expect(JSON.parse(line)).toEqual({
      "@timestamp": "2026-11-22T12:00:00.000Z",
      level: "WARN",
      message: "listening for clients on 127.0.0.1:3306",
      logger: "galerad.proxy",
      properties: { host: "127.0.0.1", port: 3306 },
    });
  });

  test("objects render as JSON, errors by message; a newline stays inside one line", () => {
    const error = new Error("boom\nsecond line");
    const line = jsonLine(
      record(["peers ", ["a", "b"], " failed: ", error, ""], { error, size: 10n }),
    );
    expect(line.split("\n")).toHaveLength(2);
    const parsed = JSON.parse(line);
    expect(parsed.message).toBe('peers ["a","b"] failed: boom\nsecond line');
    expect(parsed.properties).toEqual({
      error: { name: "Error", message: "boom\nsecond line" },
      size: "10",
    });
  });

  test("a cycle does not throw", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const parsed = JSON.parse(jsonLine(record(["state ", cyclic, ""], { cyclic })));
    expect(parsed.message).toBe("state [object Object]");
    expect(parsed.properties.unserializable).toBeDefined();
  });
});
