/**
 * Writes galerad(1) in roff from the binary's own --help, so the manual never drifts from the
 * flags: `bun scripts/manpage.ts BINARY OUT`.
 */
import process from "node:process";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";

const [binary, out] = process.argv.slice(2);
if (!binary || !out) {
  console.error("usage: manpage.ts BINARY OUT");
  process.exit(2);
}
const help = (args: string[]) =>
  execFileSync(binary, [...args, "--help"], { encoding: "utf8", env: { PATH: "" } });
const version = execFileSync(binary, ["--version"], { encoding: "utf8" }).trim();
const esc = (text: string) =>
  text.replace(/\\/g, "\\\\").replace(/^([.'])/gm, "\\&$1").replace(/-/g, "\\-");
const top = help([]);
const commands = [...top.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]).filter((c) => c !== "help");
const sections = commands.map((c) =>
  `.SH "galerad ${c.toUpperCase()}"\n.nf\n${esc(help([c]))}\n.fi`
);
writeFileSync(
  out,
  `.TH GALERAD 1 "" "galerad ${version}" "User Commands"
.SH NAME
galerad \\- single-writer routing, health agent, discovery and bootstrap for Galera clusters
.SH SYNOPSIS
.nf
${esc(top)}
.fi
.SH DESCRIPTION
galerad routes every MySQL client to one sticky, healthy node of a MariaDB or Percona Galera
cluster, agrees on that node with its peers, severs sessions on a node that loses the role,
and serves a health port, a JSON API and a dashboard. Exit codes: 0 done, 1 runtime failure,
2 bad input (one line naming the flag, the value and what was expected).
${sections.join("\n")}
.SH FILES
/etc/galerad/proxy.yaml, /etc/galerad/healthcheck.yaml, /var/lib/galerad
.SH SEE ALSO
systemctl(1), mariadbd(8)
`,
);
