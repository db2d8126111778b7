const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;

/**
 * Parses an operator-facing duration ("500ms", "2s", "1.5s", "1m"; a bare number is
 * milliseconds, as HAProxy reads it) into milliseconds. Returns undefined when the text is
 * not a duration, so callers can name the field in their own error.
 */
export function parseDuration(text: string | number): number | undefined {
  if (typeof text === "number") return Number.isFinite(text) && text >= 0 ? text : undefined;
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  const value = Number(match[1]) * UNITS[match[2] ?? "ms"];
  return Number.isFinite(value) ? Math.round(value) : undefined;
}
