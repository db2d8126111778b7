/**
 * The kernel's own path for client flows (`--data-plane nft`): nftables forwards them to the
 * active node by destination NAT, so their bytes never reach user space. This file is the I/O
 * around nat_rules.ts: one `nft -i` child holds the owner-flagged route table (it vanishes with
 * the child, so a crash never leaves a rule pointing anywhere), `conntrack` lists the flows,
 * and poke.ts wakes idle ones so that both ends see the reset at once.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { type HostPort, parseIpv4 } from "../core/address.ts";
import type { Libc } from "../runtime/libc.ts";
import { type Flow, parseConntrack } from "./conntrack.ts";
import { resolveIp } from "./resolve_ip.ts";
import {
  counterCommands,
  FLOW_MARK,
  flowMark,
  guardTable,
  nextGeneration,
  routeDrain,
  routeSwap,
  routeTable,
} from "./nat_rules.ts";
import { Poker } from "./poke.ts";

/** One table per host: a second galerad asking for it fails instead of sharing the marks. */
export const ROUTE_TABLE = "galerad";
export const GUARD_TABLE = "galerad_guard";
/** The counter listed after each command: its listing is the command's acknowledgement. */
const ACK = "ack";
/** The end of that listing: `counter ack { packets … }` and the table's closing brace. */
const ACK_LISTING = new RegExp(`counter ${ACK} \\{[^}]*\\}\\s*\\}\\n`);
/** A woken end answers at most this often (net.ipv4.tcp_invalid_ratelimit); poke again after. */
const POKE_AGAIN_MS = 600;
const POKE_ROUNDS = 3;

/** A node the kernel may route to: its name and address (an IPv4 address or a name for one). */
export interface KernelNode extends HostPort {
  name: string;
}

/** What the kernel carries for one node: open flows now, and totals since the start. */
export interface KernelFlows {
  sessions: number;
  accepted: number;
  bytesUp: number;
  bytesDown: number;
}

/** Why the kernel path cannot run here, in one line an operator can act on. */
export class KernelPathError extends Error {}
class HeldError extends KernelPathError {}
/** Tries to take the route table, 100 ms apart, before saying another process holds it. */
const TAKE_TRIES = 30;

type Run = (command: string, args: string[]) => Promise<string>;

const runCommand: Run = (command, args) =>
  new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`${command} ${args.join(" ")}: ${String(stderr || error).trim()}`));
      } else resolve(stdout);
    });
  });

/** The host settings NAT through this host needs, or a line saying which one is missing. */
function checkHost(): void {
  const forwarding = readSysctl("net/ipv4/ip_forward");
  if (forwarding !== "1") {
    throw new KernelPathError(
      `--data-plane nft: net.ipv4.ip_forward is ${
        forwarding ?? "unreadable"
      }; expected 1 (set it with sysctl, in the namespace galerad runs in)`,
    );
  }
}

function readSysctl(name: string): string | null {
  try {
    return readFileSync(`/proc/sys/${name}`, "utf8").trim();
  } catch {
    return null;
  }
}

/**
 * The route table and its `nft -i` child; every change is one line, acknowledged by the
 * listing of the ack counter that follows it (errors come first on the same stream).
 */
class NftShell {
  readonly #child: ChildProcess;
  #out = "";
  #waiting: Array<{ resolve: (errors: string) => void }> = [];
  #exited = false;
  onExit: (() => void) | null = null;

  constructor() {
    // One stream for answers and errors keeps them in the order the lines were read.
    this.#child = spawn("sh", ["-c", "exec nft -i 2>&1"], { stdio: ["pipe", "pipe", "ignore"] });
    this.#child.stdout!.setEncoding("utf8");
    this.#child.stdout!.on("data", (chunk: string) => this.#read(chunk));
    this.#child.on("exit", () => {
      this.#exited = true;
      for (const w of this.#waiting.splice(0)) w.resolve("nft exited");
      this.onExit?.();
    });
    this.#child.stdin!.on("error", () => {});
  }

  #read(chunk: string): void {
    this.#out += chunk;
    for (let m = ACK_LISTING.exec(this.#out); m; m = ACK_LISTING.exec(this.#out)) {
      const before = this.#out.slice(0, m.index).replace(/table ip \S+ \{\s*$/, "");
      this.#out = this.#out.slice(m.index + m[0].length);
      this.#waiting.shift()?.resolve(before.trim());
    }
  }

  /** Applies `line` (one transaction); resolves once nft read it, with what it complained of. */
  apply(line: string): Promise<string> {
    if (this.#exited) return Promise.resolve("nft exited");
    return new Promise((resolve) => {
      this.#waiting.push({ resolve });
      this.#child.stdin!.write(`${line}\nlist counter ip ${ROUTE_TABLE} ${ACK}\n`);
    });
  }

  /** Ends the child; the kernel drops the route table with it. */
  close(): Promise<void> {
    if (this.#exited) return Promise.resolve();
    this.onExit = null;
    return new Promise((resolve) => {
      this.#child.once("exit", () => resolve());
      this.#child.stdin!.end();
    });
  }
}

/**
 * Points the kernel's route at a node, or at nothing (new flows then reach galerad's own
 * listener, which holds or refuses them as it always does), and cuts the flows of every route
 * before the current one: the guard resets them on their next packet, the poker at once.
 */
export class NftPath {
  #shell!: NftShell;
  #generation = 0;
  #target: KernelNode | null = null;
  #changes: Promise<void> = Promise.resolve();
  #closed = false;
  readonly #poker: Poker;
  /** Each node routed to gets a set of named counters (routeTable), by index; never reused. */
  readonly #nodes = new Map<string, { index: number; ip: string; port: number }>();
  /** Called when the route table was lost (nft ended) and had to be made again. */
  onLost: ((why: string) => void) | null = null;

  private constructor(readonly listen: HostPort, poker: Poker, readonly run: Run) {
    this.#poker = poker;
  }

  /**
   * Makes the guard and route tables; throws a KernelPathError naming what is missing (Linux,
   * nft, conntrack, CAP_NET_ADMIN, IPv4 forwarding) when it cannot.
   */
  static async open(
    listen: HostPort,
    libc: Libc | null,
    run: Run = runCommand,
  ): Promise<NftPath> {
    if (process.platform !== "linux") {
      throw new KernelPathError(`--data-plane nft: needs Linux, this is ${process.platform}`);
    }
    for (const tool of ["nft", "conntrack"]) {
      await run(tool, ["--version"]).catch(() => {
        throw new KernelPathError(
          `--data-plane nft: cannot run ${tool}; install it (Debian: apt install ${
            tool === "nft" ? "nftables" : "conntrack"
          })`,
        );
      });
    }
    checkHost();
    // The guard outlives galerad on purpose: made once, replaced whole, never owned.
    await applyFile(
      `add table ip ${GUARD_TABLE}\ndelete table ip ${GUARD_TABLE}\n${guardTable(GUARD_TABLE)}`,
    )
      .catch((error: Error) => {
        throw new KernelPathError(
          /Operation not permitted/.test(error.message)
            ? "--data-plane nft: nftables refused the guard table: needs CAP_NET_ADMIN (run as root or grant the capability)"
            : `--data-plane nft: nftables refused the guard table: ${error.message}`,
        );
      });
    if (!libc) {
      throw new KernelPathError(
        "--data-plane nft: cannot load libc's socket calls (Linux with glibc under Bun or Deno is needed) to wake idle flows",
      );
    }
    let poker: Poker;
    try {
      poker = new Poker(libc);
    } catch (error) {
      throw new KernelPathError(
        `--data-plane nft: cannot wake idle flows: ${(error as Error).message}`,
      );
    }
    const path = new NftPath(listen, poker, run);
    // A galerad that just died may still hold the table for a moment: its nft is ending.
    for (let tries = 0;; tries++) {
      try {
        await path.#makeTable();
        return path;
      } catch (error) {
        if (!(error instanceof HeldError) || tries >= TAKE_TRIES) {
          poker.close();
          throw error;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async #makeTable(): Promise<void> {
    this.#shell = new NftShell();
    const errors = await this.#shell.apply(
      [
        ...routeTable(ROUTE_TABLE, this.#nodes.size),
        `add counter ip ${ROUTE_TABLE} ${ACK}`,
      ].join("; "),
    );
    if (errors) {
      await this.#shell.close();
      // The guard was just made with the same rights: refused now, the table has an owner.
      if (/Device or resource busy|File exists|Operation not permitted/.test(errors)) {
        throw new HeldError(
          `--data-plane nft: the ${ROUTE_TABLE} table is held by another process (another galerad on this host?)`,
        );
      }
      throw new KernelPathError(
        `--data-plane nft: nftables refused the route table: ${errors.split("\n")[0]}`,
      );
    }
    this.#shell.onExit = () => void this.#lost();
  }

  async #lost(): Promise<void> {
    if (this.#closed) return;
    this.onLost?.("the nft process holding the route table ended");
    await this.#makeTable().catch((error) => this.onLost?.(String(error)));
    const target = this.#target;
    this.#target = null;
    if (target) await this.point(target);
  }

  /**
   * Routes new flows to `node` (null: to nowhere) in one transaction; every flow of an earlier
   * route is cut from that moment. Resolves once nft applied it; throws with nft's complaint.
   */
  point(node: KernelNode | null): Promise<void> {
    const change = this.#changes.then(async () => {
      const generation = nextGeneration(this.#generation);
      const known = node && this.#nodes.get(node.name);
      const slot = node && (known ?? await this.#slot(node));
      const add = node && !known ? `${counterCommands(ROUTE_TABLE, slot!.index)}; ` : "";
      const errors = await this.#shell.apply(
        add + routeSwap(
          ROUTE_TABLE,
          this.listen,
          generation,
          slot && { node: { host: slot.ip, port: slot.port }, counter: slot.index },
        ),
      );
      if (errors) throw new Error(`nft refused the route to ${node?.name ?? "nowhere"}: ${errors}`);
      if (node && !known) this.#nodes.set(node.name, slot!);
      this.#generation = generation;
      this.#target = node;
    });
    this.#changes = change.catch(() => {});
    return change;
  }

  async #slot(node: KernelNode) {
    const ip = await resolveIp(node.host);
    if (!parseIpv4(ip)) {
      throw new Error(`${node.name}: the kernel path routes IPv4 only, got ${ip}`);
    }
    return { index: this.#nodes.size, ip, port: node.port };
  }

  /** No new flows from now on; the running ones stay (a drain before a stop). */
  drain(): Promise<void> {
    const change = this.#changes.then(async () => {
      await this.#shell.apply(routeDrain(ROUTE_TABLE));
      this.#target = null;
    });
    this.#changes = change.catch(() => {});
    return change;
  }

  /** The flows galerad's rules made that are still open (any generation). */
  async flows(): Promise<Flow[]> {
    const text = await this.run("conntrack", [
      "-L",
      "-p",
      "tcp",
      "--mark",
      `${FLOW_MARK}/${0xff000000}`,
    ]);
    return parseConntrack(text).filter((f) => OPEN_STATES.has(f.state));
  }

  /** The open flows of routes before the current one: cut, but their ends may not know yet. */
  async staleFlows(): Promise<Flow[]> {
    const current = this.#generation > 0 ? flowMark(this.#generation) : -1;
    const live = this.#target !== null;
    return (await this.flows()).filter((f) => !live || f.mark !== current);
  }

  /**
   * Wakes both ends of every cut flow so they see the reset now, idle ones included; resolves
   * with how many flows were cut and how many were still open once the rounds are done.
   */
  async wakeStale(): Promise<{ cut: number; left: number }> {
    let stale = await this.staleFlows();
    const cut = stale.length;
    for (let round = 0; round < POKE_ROUNDS && stale.length > 0; round++) {
      for (const flow of stale) {
        // The client's end: as if from the address it dialled.
        this.#poker.poke(
          { ip: flow.original.dst, port: flow.original.dport },
          { ip: flow.original.src, port: flow.original.sport },
        );
        // The node's end: as if from this host's masqueraded port.
        this.#poker.poke(
          { ip: flow.reply.dst, port: flow.reply.dport },
          { ip: flow.reply.src, port: flow.reply.sport },
        );
      }
      await new Promise((r) => setTimeout(r, round === 0 ? 50 : POKE_AGAIN_MS));
      stale = await this.staleFlows();
    }
    return { cut, left: stale.length };
  }

  /** Sessions and totals per node name, from conntrack and the named counters. */
  async counts(): Promise<Map<string, KernelFlows>> {
    const [flows, listing] = await Promise.all([
      this.flows(),
      this.run("nft", ["-j", "list", "counters", "table", "ip", ROUTE_TABLE]),
    ]);
    const totals = new Map<string, number>();
    for (const item of (JSON.parse(listing).nftables ?? []) as Array<Record<string, unknown>>) {
      const c = item.counter as { name: string; packets: number; bytes: number } | undefined;
      if (c) totals.set(c.name, c.name.startsWith("new_") ? c.packets : c.bytes);
    }
    const byAddress = new Map<string, string>();
    const counts = new Map<string, KernelFlows>();
    for (const [name, slot] of this.#nodes) {
      byAddress.set(`${slot.ip}:${slot.port}`, name);
      counts.set(name, {
        sessions: 0,
        accepted: totals.get(`new_${slot.index}`) ?? 0,
        bytesUp: totals.get(`up_${slot.index}`) ?? 0,
        bytesDown: totals.get(`down_${slot.index}`) ?? 0,
      });
    }
    for (const flow of flows) {
      const name = byAddress.get(`${flow.reply.src}:${flow.reply.sport}`);
      if (name) counts.get(name)!.sessions++;
    }
    return counts;
  }

  /**
   * Ends the route table (its flows are then cut by the guard and woken), leaving the guard:
   * with no galerad, flows through this host fail closed.
   */
  async close(): Promise<void> {
    await this.point(null).catch(() => {});
    await this.wakeStale().catch(() => null);
    this.#closed = true;
    await this.#changes;
    await this.#shell.close();
    this.#poker.close();
  }
}

/** States in which a flow can still carry data; the rest are closing or closed. */
const OPEN_STATES = new Set(["SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT"]);

function applyFile(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile("nft", ["-f", "-"], (error, _stdout, stderr) => {
      if (error) reject(new Error(String(stderr || error).trim()));
      else resolve();
    });
    child.stdin!.end(text);
  });
}
