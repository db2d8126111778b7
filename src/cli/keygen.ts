import { Command } from "@commander-js/extra-typings";
import { existsSync, writeFileSync } from "node:fs";
import { generateIdentity } from "../peers/identity.ts";
import { UsageError } from "./errors.ts";

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/**
 * `galerad keygen --name p1 --out FILE`: a new Ed25519 key pair for one party of the peer wire.
 * The private key goes to FILE (mode 0600; an existing file is never overwritten); the public
 * line is printed, to add to the --peer-public-keys file every party shares.
 */
export function keygenCommand(): Command<[], Record<string, unknown>> {
  const command = new Command("keygen")
    .description("make an Ed25519 key pair for a proxy or voting agent (--peer-key-file)")
    .requiredOption(
      "--name <name>",
      "the party's name: the proxy's --name, the agent's --vote-name",
    )
    .requiredOption("--out <file>", "where to write the private key (mode 0600)");
  command.action(async () => {
    const { name, out } = command.opts() as { name: string; out: string };
    if (!NAME.test(name)) {
      throw new UsageError(`invalid --name "${name}": expected letters, digits, '.', '_' or '-'`);
    }
    if (existsSync(out)) {
      throw new UsageError(`invalid --out "${out}": the file exists; not overwriting a key`);
    }
    const { privateKey, publicKey } = await generateIdentity();
    writeFileSync(out, `# galerad Ed25519 private key of ${name}\n${privateKey}\n`, {
      mode: 0o600,
      flag: "wx",
    });
    console.log(`${name} ${publicKey}`);
  });
  return command as unknown as Command<[], Record<string, unknown>>;
}
