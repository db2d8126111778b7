/**
 * The packages as an operator installs them: scripts/package.sh builds the .deb and .tar.gz;
 * the .deb is installed on this machine (CI runs as root), its units pass `systemd-analyze
 * verify`, the installed binary runs, and a purge removes the user, the state folder and the
 * configuration.
 */
import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { existsSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import process from "node:process";
import pkg from "../../package.json" with { type: "json" };
import { ROOT } from "../../scripts/lab/spawn.ts";

const run = (cmd: string, args: string[]) =>
  execFileSync(cmd, args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const user = () => {
  try {
    return run("getent", ["passwd", "galerad"]).trim();
  } catch {
    return null;
  }
};

describe("packages", () => {
  test.skipIf(process.getuid?.() !== 0)(
    ".deb and .tar.gz: install, verify the units, run, purge",
    () => {
      const out = run("bash", ["scripts/package.sh"]).trim().split("\n");
      const deb = path.join(ROOT, out.find((l) => l.endsWith(".deb"))!);
      const tarball = path.join(ROOT, out.find((l) => l.endsWith(".tar.gz"))!);
      const files = run("tar", ["-tzf", tarball]);
      for (
        const f of [
          "./usr/bin/galerad",
          "./lib/systemd/system/galerad-proxy.service",
          "./lib/systemd/system/galerad-healthcheck.service",
          "./etc/galerad/proxy.yaml",
          "./usr/share/man/man1/galerad.1.gz",
        ]
      ) expect(files).toContain(f);
      try {
        run("dpkg", ["-i", deb]);
        expect(run("/usr/bin/galerad", ["--version"]).trim()).toBe(pkg.version);
        expect(user()).toMatch(/^galerad:x:\d+:\d+:.*:\/var\/lib\/galerad:\/usr\/sbin\/nologin$/);
        expect(statSync("/var/lib/galerad").isDirectory()).toBe(true);
        // The shipped example configuration is valid once its password file exists.
        const check = () =>
          execFileSync("/usr/bin/galerad", [
            "proxy",
            "--config",
            "/etc/galerad/proxy.yaml",
            "--check-config",
          ], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
        expect(check).toThrow("cannot read it (ENOENT)");
        writeFileSync("/etc/galerad/api-password", "example-password\n", { mode: 0o600 });
        expect(check()).toContain("the configuration is valid: 3 backends");
        rmSync("/etc/galerad/api-password");
        const verify = execFileSync("systemd-analyze", [
          "verify",
          "--man=no",
          "/lib/systemd/system/galerad-proxy.service",
          "/lib/systemd/system/galerad-healthcheck.service",
        ], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
        expect(verify.trim()).toBe("");
        const man = execFileSync("sh", ["-c", "zcat /usr/share/man/man1/galerad.1.gz"], {
          encoding: "utf8",
        });
        expect(man).toContain('.SH "galerad PROXY"');
        expect(man).toContain("\\-\\-reader\\-listen");
      } finally {
        run("dpkg", ["--purge", "galerad"]);
      }
      expect(user()).toBeNull();
      for (const p of ["/usr/bin/galerad", "/var/lib/galerad", "/etc/galerad"]) {
        expect({ p, exists: existsSync(p) }).toEqual({ p, exists: false });
      }
    },
    240_000,
  );
});
