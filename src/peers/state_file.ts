import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import process from "node:process";
import type { Register } from "../core/register.ts";

/**
 * Reads the register a proxy persisted before it stopped. Returns null when there is no file;
 * throws a TypeError naming the file when it exists but cannot be used, so a corrupt state file
 * is noticed rather than silently replaced by "node 0".
 */
export function readStateFile(file: string, cluster: string): Register | null {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return null;
    throw new TypeError(`cannot read state file "${file}": ${(error as Error).message}`, {
      cause: error,
    });
  }
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(text);
  } catch {
    throw new TypeError(
      `state file "${file}" is not valid JSON: remove it to start without remembered state`,
    );
  }
  const r = data?.register as Record<string, unknown> | undefined;
  if (
    !r || typeof r.epoch !== "number" || typeof r.proposer !== "string" ||
    (r.active !== null && typeof r.active !== "string") || typeof r.cluster !== "string"
  ) {
    throw new TypeError(
      `state file "${file}" has no valid register: remove it to start without remembered state`,
    );
  }
  if (r.cluster !== cluster) return null; // another cluster's memory is no memory of ours
  return {
    cluster: r.cluster,
    epoch: r.epoch,
    proposer: r.proposer,
    active: r.active as string | null,
    reason: typeof r.reason === "string" ? r.reason : "",
    time: typeof r.time === "number" ? r.time : 0,
  };
}

/** Writes the register atomically: a temporary file beside it, then a rename. */
export function writeStateFile(file: string, register: Register): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ version: 1, register }, null, 2) + "\n", { mode: 0o644 });
  renameSync(tmp, file);
}
