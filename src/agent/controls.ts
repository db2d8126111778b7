import { getLogger } from "@logtape/logtape";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import process from "node:process";
import type { Agent } from "./agent.ts";
import { markSafeToBootstrap, parseRecoveredPosition, readGrastate } from "./grastate.ts";
import { type ServerIdentity, serverProcessAlive } from "./mysqld_process.ts";
import { sstDonorRunning } from "./sst_process.ts";

const log = getLogger(["galerad", "agent"]);

/** The commands that start and stop the server on this host, as argument lists (no shell). */
export interface ControlOptions extends ServerIdentity {
  startCommand?: string[];
  bootstrapCommand?: string[];
  stopCommand?: string[];
  /** The server binary used for `--wsrep-recover` (default: mariadbd). */
  mysqld: string;
  /** Upper bound for any start, stop or recovery. */
  operationTimeoutMs: number;
}

export type OperationName = "start_mysql_join" | "start_mysql_bootstrap" | "stop_mysql";

/** One start or stop, with its progress. */
export interface Operation {
  id: number;
  name: OperationName;
  command: string[];
  state: "running" | "succeeded" | "failed" | "timed_out";
  startedAt: string;
  endedAt: string | null;
  exitCode: number | null;
  /** The last 4 KiB the command printed. */
  output: string;
}

/** A refused control request: HTTP status and a one-line message. */
export class ControlError extends Error {
  constructor(readonly status: 400 | 409 | 500 | 503, message: string) {
    super(message);
  }
}

export type MysqlStatus = "running" | "stopped" | "starting" | "failing";

/** The sequence number as `GET /sequence_number` answers it. */
export interface SequenceNumber {
  uuid: string;
  seqno: number;
  safe_to_bootstrap: 0 | 1;
  source: "grastate.dat" | "wsrep-recover";
}

/**
 * The agent's controls for `galerad bootstrap`: report whether the server runs, read its
 * sequence number (recovering it after a crash), and start or stop it with the operator's own
 * commands, one operation at a time, each bounded by `operationTimeoutMs`.
 */
export class Controls {
  current: Operation | null = null;
  last: Operation | null = null;
  #nextId = 1;

  constructor(readonly agent: Agent, readonly options: ControlOptions) {}

  mysqlStatus(): MysqlStatus {
    if (this.current && this.current.name !== "stop_mysql") return "starting";
    const snap = this.agent.current();
    if (snap.error === null && snap.checkedAt !== null && Object.keys(snap.readings).length > 0) {
      return "running";
    }
    const alive = serverProcessAlive(this.options);
    if (alive) {
      return this.last?.state === "failed" || this.last?.state === "timed_out"
        ? "failing"
        : "starting";
    }
    if (this.last && this.last.name !== "stop_mysql" && this.last.state !== "succeeded") {
      return "failing";
    }
    return "stopped";
  }

  /** grastate.dat's position; after a crash (seqno -1), the one `--wsrep-recover` finds. */
  async sequenceNumber(): Promise<SequenceNumber> {
    const datadir = this.options.datadir;
    if (!datadir) {
      throw new ControlError(
        400,
        "the agent was started without --datadir: it cannot read grastate.dat",
      );
    }
    const status = this.mysqlStatus();
    if (status === "running" || status === "starting") {
      throw new ControlError(
        409,
        `the server is ${status}: the sequence number is read only while it is stopped`,
      );
    }
    let state;
    try {
      state = readGrastate(datadir);
    } catch (error) {
      throw new ControlError(
        500,
        `cannot read ${datadir}/grastate.dat: ${(error as Error).message}`,
      );
    }
    if (state.seqno !== -1) {
      return {
        uuid: state.uuid,
        seqno: state.seqno,
        safe_to_bootstrap: state.safeToBootstrap ? 1 : 0,
        source: "grastate.dat",
      };
    }
    if (sstDonorRunning() || this.current) {
      throw new ControlError(
        409,
        "an SST or another operation is in progress: recovery would disturb it",
      );
    }
    const position = await this.#recover();
    return {
      uuid: position.uuid,
      seqno: position.seqno,
      safe_to_bootstrap: state.safeToBootstrap ? 1 : 0,
      source: "wsrep-recover",
    };
  }

  /** Starts an operation in the background; its progress is `current`, then `last`. */
  start(name: OperationName): Operation {
    if (this.current) {
      throw new ControlError(
        409,
        `${this.current.name} is already running (operation ${this.current.id})`,
      );
    }
    const command = name === "start_mysql_join"
      ? this.options.startCommand
      : name === "start_mysql_bootstrap"
      ? this.options.bootstrapCommand
      : this.options.stopCommand;
    const flag = name === "start_mysql_join"
      ? "--start-command"
      : name === "start_mysql_bootstrap"
      ? "--bootstrap-command"
      : "--stop-command";
    if (!command || command.length === 0) {
      throw new ControlError(400, `the agent was started without ${flag}`);
    }
    const status = this.mysqlStatus();
    if (name !== "stop_mysql" && (status === "running" || status === "starting")) {
      throw new ControlError(409, `the server is ${status}: stop it before starting it`);
    }
    if (name === "start_mysql_bootstrap" && this.options.datadir) {
      try {
        markSafeToBootstrap(this.options.datadir);
      } catch (error) {
        throw new ControlError(
          500,
          `cannot mark grastate.dat safe to bootstrap: ${(error as Error).message}`,
        );
      }
    }
    const op: Operation = {
      id: this.#nextId++,
      name,
      command,
      state: "running",
      startedAt: new Date().toISOString(),
      endedAt: null,
      exitCode: null,
      output: "",
    };
    this.current = op;
    log.warn("{name}: running {command}", { name, command: command.join(" ") });
    this.#run(command).then(({ code, output, timedOut }) => {
      op.exitCode = code;
      op.output = output;
      op.state = timedOut ? "timed_out" : code === 0 ? "succeeded" : "failed";
      op.endedAt = new Date().toISOString();
      this.current = null;
      this.last = op;
      const fields = { name, state: op.state, code };
      if (op.state === "succeeded") log.info("{name} {state}", fields);
      else log.error("{name} {state} (exit code {code})", fields);
      void this.agent.poll();
    });
    return op;
  }

  #run(command: string[]): Promise<{ code: number | null; output: string; timedOut: boolean }> {
    return new Promise((resolve) => {
      let output = "";
      let timedOut = false;
      const keep = (chunk: Buffer) => (output = (output + chunk.toString("utf8")).slice(-4096));
      const child = spawn(command[0], command.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
      child.stdout!.on("data", keep);
      child.stderr!.on("data", keep);
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 5000).unref?.();
      }, this.options.operationTimeoutMs);
      child.on("error", (error) => {
        clearTimeout(timer);
        resolve({ code: null, output: `${output}${error.message}\n`, timedOut });
      });
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, output, timedOut });
      });
    });
  }

  async #recover(): Promise<{ uuid: string; seqno: number }> {
    const dir = mkdtempSync(path.join(tmpdir(), "galerad-recover-"));
    const logFile = path.join(dir, "recover.log");
    const args = [
      ...(this.options.defaultsFile ? [`--defaults-file=${this.options.defaultsFile}`] : []),
      ...(this.options.datadir && !this.options.defaultsFile
        ? [`--datadir=${this.options.datadir}`]
        : []),
      ...(process.getuid?.() === 0 ? ["--user=mysql"] : []),
      "--wsrep-recover",
      "--skip-networking",
      `--log-error=${logFile}`,
    ];
    try {
      // The log file must be writable by the user the server drops to.
      if (process.getuid?.() === 0) {
        const { execFileSync } = await import("node:child_process");
        execFileSync("chown", ["mysql", dir]);
      }
      log.warn("recovering the position with {command}", {
        command: [this.options.mysqld, ...args].join(" "),
      });
      const { code, output, timedOut } = await this.#run([this.options.mysqld, ...args]);
      let text = output;
      try {
        text += readFileSync(logFile, "utf8");
      } catch {
        // the server wrote nowhere: the output is all we have
      }
      const position = parseRecoveredPosition(text);
      if (!position) {
        const why = timedOut ? "timed out" : `exit code ${code}`;
        throw new ControlError(
          500,
          `--wsrep-recover found no position (${why}): ${text.trim().split("\n").at(-1) ?? ""}`,
        );
      }
      return position;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
