/**
 * A tier of `galerad proxy` processes gossiping with each other on loopback, for the peers tests
 * and the convergence benchmark.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort, waitFor } from "./fixtures.ts";
import { type Daemon, startDaemon } from "./spawn.ts";

export const SECRET = "tier-test-shared-secret-0123456789";

export interface TierMember {
  name: string;
  clientPort: number;
  apiPort: number;
  /** The load-balancer port (`/ready`). */
  healthPort: number;
  peerPort: number;
  stateFile: string;
  daemon: Daemon | null;
}

export interface TierOptions {
  names: string[];
  /** `--backend` specs for a given proxy (each proxy may watch its own agents). */
  backendsFor(name: string): string[];
  /** The address `self` uses to reach `other` (a relay, in the lossy tests); default: direct. */
  peerAddress?(self: TierMember, other: TierMember): string;
  /** Which peers `self` knows (a partial mesh); default: all. */
  knows?(self: string, other: string): boolean;
  extra?: string[];
  /** Flags for one proxy only (its own key file, say). */
  extraFor?(name: string): string[];
  command?: string[];
  /** False: every proxy decides alone (no --peers, no state file), as a control. */
  peers?: boolean;
  /** How long `startAll` waits for each proxy to be ready (15 s unless a large tier asks more). */
  readyTimeoutMs?: number;
}

export class Tier {
  readonly members = new Map<string, TierMember>();
  readonly dir = mkdtempSync(path.join(tmpdir(), "galerad-tier-"));

  private constructor(readonly options: TierOptions) {}

  static async create(options: TierOptions): Promise<Tier> {
    const tier = new Tier(options);
    for (const name of options.names) {
      tier.members.set(name, {
        name,
        clientPort: await freePort(),
        apiPort: await freePort(),
        healthPort: await freePort(),
        peerPort: await freePort(),
        stateFile: path.join(tier.dir, `${name}.state.json`),
        daemon: null,
      });
    }
    return tier;
  }

  member(name: string): TierMember {
    return this.members.get(name)!;
  }

  args(name: string): string[] {
    const self = this.member(name);
    const peers = [...this.members.values()]
      .filter((m) => m.name === name || (this.options.knows?.(name, m.name) ?? true))
      .map((m) =>
        `${m.name}=${
          m.name === name
            ? `127.0.0.1:${m.peerPort}`
            : (this.options.peerAddress?.(self, m) ?? `127.0.0.1:${m.peerPort}`)
        }`
      );
    return [
      "proxy",
      "--name",
      name,
      "--listen",
      `127.0.0.1:${self.clientPort}`,
      "--api-listen",
      `127.0.0.1:${self.apiPort}`,
      "--health-listen",
      `127.0.0.1:${self.healthPort}`,
      "--api-password",
      "lab-secret-pw",
      ...(this.options.peers === false ? [] : [
        ...["--peers", peers.join(",")],
        ...["--peer-listen", `127.0.0.1:${self.peerPort}`],
        ...["--state-file", self.stateFile],
      ]),
      "--interval",
      "50ms",
      "--gossip-interval",
      "100ms",
      "--lease",
      "1s",
      "--startup-wait",
      "1s",
      ...this.options.backendsFor(name).flatMap((b) => ["--backend", b]),
      ...(this.options.extra ?? []),
      ...(this.options.extraFor?.(name) ?? []),
    ];
  }

  start(name: string): Daemon {
    const m = this.member(name);
    m.daemon = startDaemon(this.args(name), {
      // Proxies deciding alone get no secret: with one they would look for voting agents.
      env: this.options.peers === false ? {} : { GALERAD_PEER_SECRET: SECRET },
      command: this.options.command,
    });
    return m.daemon;
  }

  async startAll(): Promise<void> {
    for (const name of this.members.keys()) this.start(name);
    for (const name of this.members.keys()) {
      await waitFor(
        `${name} ready`,
        async () => (await this.cluster(name).catch(() => null))?.ready,
        this.options.readyTimeoutMs ?? 15_000,
      ).catch((error) => {
        const tail = this.member(name).daemon?.stderr.split("\n").slice(-12).join("\n");
        throw new Error(`${(error as Error).message}; its last log lines:\n${tail}`);
      });
    }
  }

  async stop(name: string, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const m = this.member(name);
    await m.daemon?.stop(signal);
    m.daemon = null;
  }

  async stopAll(): Promise<void> {
    for (const name of this.members.keys()) await this.stop(name, "SIGKILL");
  }

  async api(name: string, pathname: string, init: RequestInit = {}) {
    const res = await fetch(`http://127.0.0.1:${this.member(name).apiPort}${pathname}`, {
      ...init,
      headers: { Authorization: `Basic ${btoa("admin:lab-secret-pw")}`, ...(init.headers ?? {}) },
      signal: AbortSignal.timeout(2000),
    });
    return res.json();
  }

  cluster(name: string) {
    return this.api(name, "/v0/cluster");
  }

  /** Every running member's register, by name. */
  async registers(): Promise<
    Record<string, { epoch: number; proposer: string; active: string | null }>
  > {
    const out: Record<string, { epoch: number; proposer: string; active: string | null }> = {};
    for (const [name, m] of this.members) {
      if (m.daemon) out[name] = (await this.cluster(name)).register;
    }
    return out;
  }

  /** Waits until every running member holds the same register, with `active` if given. */
  async converged(active?: string | null, timeoutMs = 10_000) {
    return await waitFor(
      `the tier to agree${active !== undefined ? ` on ${active}` : ""}`,
      async () => {
        const regs = Object.values(await this.registers());
        const first = regs[0];
        const same = regs.every((r) =>
          r.epoch === first.epoch && r.proposer === first.proposer && r.active === first.active
        );
        return same && (active === undefined || first.active === active) ? first : null;
      },
      timeoutMs,
    );
  }
}
