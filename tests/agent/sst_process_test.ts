import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { sstDonorRunning } from "../../src/agent/sst_process.ts";

function fakeProc(cmdlines: string[][]): string {
  const dir = mkdtempSync(path.join(tmpdir(), "galerad-proc-"));
  cmdlines.forEach((args, i) => {
    mkdirSync(path.join(dir, String(100 + i)));
    writeFileSync(path.join(dir, String(100 + i), "cmdline"), args.join("\0") + "\0");
  });
  mkdirSync(path.join(dir, "self"));
  return dir;
}

describe("sstDonorRunning()", () => {
  test("finds an SST script running as donor", () => {
    const proc = fakeProc([["/usr/sbin/mariadbd"], [
      "/bin/bash",
      "-ue",
      "/usr//bin/wsrep_sst_rsync",
      "--role",
      "donor",
      "--address",
      "127.0.0.1:4444",
    ]]);
    expect(sstDonorRunning(proc)).toBe(true);
  });
  test("a joiner's script or no script is not a donor SST", () => {
    expect(sstDonorRunning(fakeProc([["/usr/bin/wsrep_sst_rsync", "--role", "joiner"]]))).toBe(
      false,
    );
    expect(sstDonorRunning(fakeProc([["/usr/sbin/mariadbd", "--wsrep-new-cluster"]]))).toBe(false);
  });
  test("an unreadable /proc is unknown", () => {
    expect(sstDonorRunning("/nonexistent/proc")).toBeNull();
  });
});
