import {
  configureSync,
  getTextFormatter,
  jsonLinesFormatter,
  type LogLevel,
  type LogRecord,
} from "@logtape/logtape";
import process from "node:process";

/** How logs are written: JSON Lines for machines, text for people. */
export type LogFormat = "json" | "pretty";

export const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;

/**
 * Sends every `galerad.*` log record to stderr, one line each. Only the CLI edge calls this;
 * library code only asks `getLogger(["galerad", …])`.
 */
export function setupLogging(format: LogFormat | "auto", level: LogLevel): void {
  const chosen = format === "auto" ? (process.stderr.isTTY ? "pretty" : "json") : format;
  const formatter = chosen === "json"
    ? jsonLinesFormatter
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
