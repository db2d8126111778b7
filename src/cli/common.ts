import { type Command, Option } from "@commander-js/extra-typings";
import { getLogger } from "@logtape/logtape";
import { readFileSync, statSync } from "node:fs";
import process from "node:process";
import * as v from "valibot";
import type { HostPort } from "../core/address.ts";
import { PASSWORD_RULE, PEER_SECRET_RULE, secretProblem } from "../core/secret_strength.ts";
import { LOG_LEVELS, setupLogging } from "./logging.ts";
import { UsageError } from "./errors.ts";
import { createKeyRing, type KeyRing } from "../peers/keyring.ts";
import { loadIdentity, loadPublicKeys, publicKeyOf } from "../peers/identity.ts";

/** Builds an option that also reads `GALERAD_<ENV>` and shows it in help. */
export function opt(flags: string, description: string, env: string): Option {
  return new Option(flags, description).env(`GALERAD_${env}`);
}

/**
 * Adds the HTTPS options the proxy and the agent share (their listener's certificate, and the
 * CA for agents served over https), and their schema fields. `serves` says what goes over TLS.
 */
export function withTlsOptions<C extends Command<unknown[], Record<string, unknown>>>(
  command: C,
  serves: string,
  agents: string,
): C {
  command
    .addOption(
      opt(
        "--api-tls-cert <file>",
        `serve ${serves} over HTTPS with this certificate chain (PEM; re-read on reload)`,
        "API_TLS_CERT",
      ),
    )
    .addOption(
      opt("--api-tls-key <file>", "the private key of --api-tls-cert (PEM)", "API_TLS_KEY"),
    )
    .addOption(
      opt(
        "--api-tls-only [bool]",
        "refuse to start without --api-tls-cert and --api-tls-key",
        "API_TLS_ONLY",
      ).preset("true").default("false"),
    )
    .addOption(
      opt("--agent-ca-file <file>", `trust this CA (PEM) for ${agents}`, "AGENT_CA_FILE"),
    );
  return command;
}

/** The sender-key options (identity.ts) of every party of the peer wire: proxies and agents. */
export function peerKeyOptions(): Option[] {
  return [
    opt(
      "--peer-key-file <file>",
      "this party's Ed25519 private key (galerad keygen): messages are signed as it, so the shared secret alone cannot speak for another party",
      "PEER_KEY_FILE",
    ),
    opt(
      "--peer-public-keys <file>",
      "every party's public key, one NAME BASE64 per line (the same file everywhere); with it, a message counts only when signed by its sender",
      "PEER_PUBLIC_KEYS",
    ),
  ];
}

/** Adds the options every long-running subcommand shares: config file and logging. */
export function withCommonOptions<C extends Command<unknown[], Record<string, unknown>>>(
  command: C,
): C {
  command.addOption(opt("--config <file>", "read options from a JSON or YAML file", "CONFIG"));
  command.addOption(
    opt(
      "--log-format <format>",
      "log format: json, pretty, or auto (pretty on a terminal)",
      "LOG_FORMAT",
    )
      .default("auto"),
  );
  command.addOption(
    opt("--log-level <level>", `lowest level logged: ${LOG_LEVELS.join(", ")}`, "LOG_LEVEL")
      .default("info"),
  );
  return command;
}

/** Schema entries for the shared options. */
export const commonFields = {
  logFormat: v.picklist(["json", "pretty", "auto"], "expected json, pretty or auto"),
  logLevel: v.picklist(LOG_LEVELS, `expected one of ${LOG_LEVELS.join(", ")}`),
};

/** Applies the shared logging options. */
export function applyLogging(
  options: { logFormat: "json" | "pretty" | "auto"; logLevel: (typeof LOG_LEVELS)[number] },
) {
  setupLogging(options.logFormat, options.logLevel);
}

/** Reads an operator's file named by `flag`; one UsageError line naming both when it cannot. */
export function readOptionFile(flag: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(
      `invalid ${flag} "${path}": cannot read it (${
        (error as { code?: string }).code ?? (error as Error).message
      })`,
    );
  }
}

/**
 * Reads a secret from a file (first line, trimmed), as operators keep passwords out of the
 * process list. Names the flag when the file cannot be read or is empty.
 */
export function readSecretFile(flag: string, path: string): string {
  const secret = readOptionFile(flag, path).split(/\r?\n/)[0].trim();
  if (secret === "") throw new UsageError(`invalid ${flag} "${path}": the file is empty`);
  warnIfWorldReadable(flag, path);
  return secret;
}

const warned = new Set<string>();

/** A secret file every local user can read is worth one warning (not a refusal: it may be meant). */
export function warnIfWorldReadable(flag: string, path: string): void {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    return;
  }
  if ((mode & 0o004) === 0 || warned.has(path)) return;
  warned.add(path);
  getLogger(["galerad", "cli"]).warn(
    "{flag} {path} is readable by every user (mode {mode}): chmod 600 it",
    { flag, path, mode: (mode & 0o777).toString(8).padStart(4, "0") },
  );
}

/**
 * The API (or agent-control) password, from the flag or its file; a weak one is a UsageError
 * saying what is expected. Undefined when neither is given.
 */
export function readPassword(
  options: { apiPassword?: string; apiPasswordFile?: string },
): string | undefined {
  const [flag, password] = options.apiPasswordFile
    ? ["--api-password-file", readSecretFile("--api-password-file", options.apiPasswordFile)]
    : ["--api-password", options.apiPassword];
  if (password === undefined) return undefined;
  const problem = secretProblem(password, PASSWORD_RULE);
  if (problem) throw new UsageError(`invalid ${flag}: the password is too weak: ${problem}`);
  return password;
}

/**
 * Reads the peer secrets (from --peer-secret-file, one per line, or --peer-secret, comma
 * separated) into a key ring; null when neither is given. Bad input is a UsageError naming it.
 */
export async function loadPeerKeys(
  options: {
    peerSecret?: string;
    peerSecretFile?: string;
    peerKeyFile?: string;
    peerPublicKeys?: string;
  },
  /** The name this party signs as (the proxy's --name, the agent's --vote-name). */
  self?: string,
): Promise<KeyRing | null> {
  let secrets: string[] = [];
  if (options.peerSecretFile) {
    secrets = readOptionFile("--peer-secret-file", options.peerSecretFile).split(/\r?\n/)
      .map((l) => l.trim()).filter((l) => l !== "");
    if (secrets.length === 0) {
      throw new UsageError(
        `invalid --peer-secret-file "${options.peerSecretFile}": the file is empty`,
      );
    }
    warnIfWorldReadable("--peer-secret-file", options.peerSecretFile);
  } else if (options.peerSecret !== undefined) {
    secrets = options.peerSecret.split(",").map((s) => s.trim()).filter((s) => s !== "");
    if (secrets.length === 0) throw new UsageError("invalid --peer-secret: it is empty");
  } else return null;
  const flag = options.peerSecretFile ? "--peer-secret-file" : "--peer-secret";
  for (const [i, secret] of secrets.entries()) {
    const problem = secretProblem(secret, PEER_SECRET_RULE);
    if (problem) {
      throw new UsageError(
        `invalid ${flag}: secret ${i + 1} of ${secrets.length} is too weak: ${problem}`,
      );
    }
  }
  let ring: KeyRing;
  try {
    ring = await createKeyRing(secrets);
  } catch (error) {
    throw new UsageError(`invalid peer secret: ${(error as Error).message}`);
  }
  return await withIdentity(ring, options, self);
}

/** Adds this party's key pair and everyone's public keys (both or neither) to a key ring. */
async function withIdentity(
  ring: KeyRing,
  options: { peerKeyFile?: string; peerPublicKeys?: string },
  self: string | undefined,
): Promise<KeyRing> {
  const { peerKeyFile: keyFile, peerPublicKeys: listFile } = options;
  if (keyFile === undefined && listFile === undefined) return ring;
  if (keyFile === undefined || listFile === undefined) {
    throw new UsageError(
      `${
        keyFile === undefined ? "--peer-key-file" : "--peer-public-keys"
      } is missing: give both (each party's own key, and everyone's public keys)`,
    );
  }
  if (!self) throw new UsageError("--peer-key-file needs the name this party signs as");
  const keyText = readOptionFile("--peer-key-file", keyFile);
  warnIfWorldReadable("--peer-key-file", keyFile);
  const identity = await loadIdentity(self, keyText).catch((error: Error) => {
    throw new UsageError(`invalid --peer-key-file "${keyFile}": ${error.message}`);
  });
  const publicKeys = await loadPublicKeys(readOptionFile("--peer-public-keys", listFile)).catch(
    (error: Error) => {
      throw new UsageError(`invalid --peer-public-keys "${listFile}": ${error.message}`);
    },
  );
  const listed = await publicKeyOf(publicKeys, self);
  if (listed === null) {
    throw new UsageError(`invalid --peer-public-keys "${listFile}": it does not list ${self}`);
  }
  if (listed !== identity.publicKey) {
    throw new UsageError(
      `invalid --peer-key-file "${keyFile}": it is not the key --peer-public-keys lists for ${self}`,
    );
  }
  return { ...ring, identity, publicKeys };
}

/** Runs `stop` on the first SIGTERM or SIGINT; a second signal exits at once. */
export function onShutdownSignal(stop: (signal: string) => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    stop(signal).then(() => process.exit(0), () => process.exit(1));
  };
  process.on("SIGTERM", () => handler("SIGTERM"));
  process.on("SIGINT", () => handler("SIGINT"));
}

/** SIGHUP (and `systemctl reload`) calls `reload`; without this, SIGHUP would kill the process. */
export function onReloadSignal(reload: () => void): void {
  process.on("SIGHUP", () => {
    getLogger(["galerad", "cli"]).info("SIGHUP: reloading the configuration");
    reload();
  });
}

/** Describes a bind failure in one line. */
export function bindError(
  what: string,
  address: HostPort,
  error: unknown,
  flag: string,
): string {
  const code = (error as { code?: string }).code;
  const detail = code === "EADDRINUSE"
    ? "address already in use"
    : code === "EACCES"
    ? "permission denied"
    : (error as Error).message ?? String(error);
  return `cannot listen for ${what} on ${address.host}:${address.port} (${flag}): ${detail}`;
}
