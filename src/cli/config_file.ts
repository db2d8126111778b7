import { readFileSync } from "node:fs";
import { UsageError } from "./errors.ts";

/**
 * Reads a config file (JSON, or YAML, which is a superset) into a plain object of option keys.
 * Keys may be written as the option's camelCase name or its flag name (`api-listen`).
 */
export async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code ?? (error as Error).message;
    throw new UsageError(`invalid --config "${path}": cannot read it (${code})`);
  }
  let data: unknown;
  try {
    // yaml is loaded only for a YAML file: it adds several MiB to every process that loads it.
    data = path.endsWith(".json") ? JSON.parse(text) : (await import("yaml")).parse(text);
  } catch (error) {
    const first = String((error as Error).message).split("\n")[0];
    throw new UsageError(
      `invalid --config "${path}": not valid ${
        path.endsWith(".json") ? "JSON" : "YAML or JSON"
      }: ${first}`,
    );
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== "object" || Array.isArray(data)) {
    throw new UsageError(
      `invalid --config "${path}": expected a mapping of option names to values`,
    );
  }
  const out: Record<string, unknown> = {};
  const spelled: Record<string, string> = {};
  for (const [key, value] of Object.entries(data)) {
    const name = key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (name in spelled) {
      throw new UsageError(
        `invalid --config "${path}": "${
          spelled[name]
        }" and "${key}" are the same key: give it once`,
      );
    }
    spelled[name] = key;
    out[name] = value;
  }
  return out;
}
