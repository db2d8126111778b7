import type { Command, Option } from "@commander-js/extra-typings";
import * as v from "valibot";
import { readConfigFile } from "./config_file.ts";
import { UsageError } from "./errors.ts";

/**
 * Merges a command's options from their three sources, flag > GALERAD_* environment variable >
 * config file, over the defaults, then validates them once with `schema`. The first problem
 * becomes a UsageError naming the flag, where the value came from, the value and what was
 * expected.
 */
export async function resolveOptions<S extends v.GenericSchema>(
  command: Command<unknown[], Record<string, unknown>>,
  schema: S,
  options: { aliases?: Record<string, string> } = {},
): Promise<v.InferOutput<S>> {
  const values = command.opts() as Record<string, unknown>;
  const configPath = values.config as string | undefined;
  const file = configPath ? await readConfigFile(configPath) : {};
  const byKey = new Map<string, Option>();
  for (const option of command.options as readonly Option[]) {
    byKey.set(option.attributeName(), option);
  }
  for (const [alias, key] of Object.entries(options.aliases ?? {})) {
    if (alias in file) {
      file[key] = file[alias];
      delete file[alias];
    }
  }
  const merged: Record<string, unknown> = {};
  const origin: Record<string, string> = {};
  for (const [key, option] of byKey) {
    if (key === "config") continue;
    const source = command.getOptionValueSource(key);
    if ((source === "cli" || source === "env") || !(key in file)) {
      merged[key] = values[key];
      origin[key] = source === "env"
        ? `environment ${option.envVar}`
        : source === "cli"
        ? "flag"
        : "default";
    } else {
      merged[key] = file[key];
      origin[key] = `config key "${key}"`;
    }
  }
  for (const key of Object.keys(file)) {
    if (!byKey.has(key) || key === "config") {
      throw new UsageError(`invalid --config "${configPath}": unknown key "${key}"`);
    }
  }
  const result = v.safeParse(schema, merged);
  if (result.success) return result.output;
  const issue = result.issues[0];
  const key = String(issue.path?.[0]?.key ?? "");
  const option = byKey.get(key);
  const flag = option?.long ?? key;
  const value = merged[key];
  if (
    value === undefined || (Array.isArray(value) && value.length === 0 && origin[key] === "default")
  ) {
    const env = option?.envVar ? ` (or ${option.envVar})` : "";
    throw new UsageError(`missing ${flag}${env}: ${issue.message}`);
  }
  throw new UsageError(
    `invalid ${flag} (${origin[key] ?? "input"}): ${JSON.stringify(value)}: ${issue.message}`,
  );
}
