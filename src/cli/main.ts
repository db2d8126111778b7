import { Command, CommanderError } from "@commander-js/extra-typings";
import process from "node:process";
import { VERSION } from "../version.ts";
import { RuntimeFailure, UsageError } from "./errors.ts";
import { bootstrapCommand } from "./bootstrap.ts";
import { discoverCommand } from "./discover.ts";
import { healthcheckCommand } from "./healthcheck.ts";
import { keygenCommand } from "./keygen.ts";
import { maintenanceCommand } from "./maintenance.ts";
import { proxyCommand } from "./proxy.ts";
import { statusCommand } from "./status.ts";

/** The whole CLI; each subcommand lives in its own file. */
export function buildProgram(): Command {
  const program = new Command("galerad")
    .description("Single-writer routing for MariaDB/Percona Galera clusters")
    .version(VERSION, "-V, --version")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  program.addCommand(proxyCommand() as unknown as Command);
  program.addCommand(healthcheckCommand() as unknown as Command);
  program.addCommand(bootstrapCommand() as unknown as Command);
  program.addCommand(statusCommand() as unknown as Command);
  program.addCommand(maintenanceCommand() as unknown as Command);
  program.addCommand(keygenCommand() as unknown as Command);
  program.addCommand(discoverCommand() as unknown as Command);
  for (const command of program.commands) command.exitOverride();
  return program;
}

/**
 * Runs the CLI: the one place that turns errors into exit codes. 2 for usage and configuration
 * errors, 1 for runtime failures; one line on stderr, never a stack trace.
 */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (error) {
    process.exitCode = exitCodeFor(error);
    if (!(error instanceof CommanderError)) {
      const message = error instanceof Error ? error.message : String(error);
      process.stderr.write(`galerad: ${message}\n`);
    }
    if (process.exitCode !== 0) process.exit(process.exitCode);
  }
}

function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) {
    return ["commander.helpDisplayed", "commander.version", "commander.help"].includes(error.code)
      ? 0
      : 2;
  }
  if (error instanceof UsageError) return 2;
  if (error instanceof RuntimeFailure) return 1;
  return 1;
}
