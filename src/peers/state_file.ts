import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import path from "node:path";
import process from "node:process";
import { MAX_EPOCH, parseRegister, type Register } from "../core/register.ts";

/** What a proxy (or an agent) keeps across restarts. */
export interface SavedState {
  register: Register;
  /** The highest epoch this proxy has seen or proposed: it never proposes one of them again. */
  epochSeen: number;
}

/**
 * Reads the state a proxy persisted before it stopped. Returns null when there is none (no file,
 * or an empty one, which `onEmpty` is told of); throws a TypeError naming the file and the field
 * when it exists but cannot be used, so a corrupt state file is noticed rather than silently
 * replaced by "node 0". Files of version 1 (no incarnation) are read too.
 */
export function readStateFile(
  file: string,
  cluster: string,
  onEmpty?: (file: string) => void,
): SavedState | null {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return null;
    throw new TypeError(`cannot read state file "${file}": ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (text.trim() === "") {
    onEmpty?.(file);
    return null;
  }
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(text);
  } catch {
    throw new TypeError(
      `state file "${file}" is not valid JSON: remove it to start without remembered state`,
    );
  }
  const raw = data?.register as Record<string, unknown> | undefined;
  const upgraded = raw && data.version === 1
    ? { incarnation: "", previous: null, kind: raw.epoch === 0 ? "none" : "failover", ...raw }
    : raw;
  const register = parseRegister(upgraded);
  if (typeof register === "string") {
    throw new TypeError(
      `state file "${file}" has no valid register (${register}): remove it to start without remembered state`,
    );
  }
  const seen = data.epochSeen ?? register.epoch;
  if (typeof seen !== "number" || !Number.isSafeInteger(seen) || seen < 0 || seen > MAX_EPOCH) {
    throw new TypeError(
      `state file "${file}" has epochSeen ${
        JSON.stringify(seen)
      }: expected an integer from 0 to ${MAX_EPOCH}`,
    );
  }
  if (register.cluster !== cluster) return null; // another cluster's memory is no memory of ours
  return { register, epochSeen: Math.max(seen, register.epoch) };
}

/**
 * Writes the state durably before anything that depends on it is sent: a temporary file beside
 * it, fsync, rename, fsync of the folder. A temporary file left by a failed write is removed.
 */
export function writeStateFile(file: string, state: SavedState): void {
  const dir = path.dirname(file);
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const text = JSON.stringify({ version: 2, ...state }, null, 2) + "\n";
  try {
    const fd = openSync(tmp, "w", 0o644);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
  try {
    const dfd = openSync(dir, "r");
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Some file systems cannot fsync a folder; the rename is then as durable as they allow.
  }
}
