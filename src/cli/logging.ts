import { configureSync, getTextFormatter, type LogLevel, type LogRecord } from "@logtape/logtape";
import process from "node:process";

/** How logs are written: JSON Lines for machines, text for people. */
export type LogFormat = "json" | "pretty";

export const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;

/** A value inside a message: strings as they are, anything else as JSON. */
function render(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.message;
  try {
    return JSON.stringify(value, jsonValue) ?? String(value);
  } catch {
    return String(value); // a cycle
  }
}

/** JSON for what JSON.stringify cannot take as it is: BigInts and Errors. */
function jsonValue(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}

/**
 * One JSON object per line: `@timestamp`, `level`, `message`, `logger`, `properties`. The
 * message is rendered as the text format renders it (logtape's JSON Lines formatter quotes every
 * string value in it, so `on "127.0.0.1":3306`); the values stay typed under `properties`.
 */
export function jsonLine(record: LogRecord): string {
  let message = "";
  for (let i = 0; i < record.message.length; i++) {
    message += i % 2 === 0 ? String(record.message[i]) : render(record.message[i]);
  }
  let properties: string;
  try {
    properties = JSON.stringify(record.properties, jsonValue);
  } catch {
    properties = JSON.stringify({ unserializable: String(record.properties) });
  }
  return `{"@timestamp":${JSON.stringify(new Date(record.timestamp).toISOString())},"level":${
    JSON.stringify(record.level === "warning" ? "WARN" : record.level.toUpperCase())
  },"message":${JSON.stringify(message)},"logger":${
    JSON.stringify(record.category.join("."))
  },"properties":${properties}}\n`;
}

/**
 * Sends every `galerad.*` log record to stderr, one line each. Only the CLI edge calls this;
 * library code only asks `getLogger(["galerad", …])`.
 */
export function setupLogging(format: LogFormat | "auto", level: LogLevel): void {
  const chosen = format === "auto" ? (process.stderr.isTTY ? "pretty" : "json") : format;
  const formatter = chosen === "json"
    ? jsonLine
    : getTextFormatter({ timestamp: "date-time-timezone", category: ".", value: "bare" });
  configureSync({
    reset: true,
    sinks: { stderr: (record: LogRecord) => void process.stderr.write(formatter(record)) },
    loggers: [
      { category: ["galerad"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}
