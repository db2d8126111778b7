/**
 * Keeps the kernel path (`--data-plane nft`, dataplane/nft_path.ts) where the proxy's decisions
 * say, one change at a time: `route` sends new flows to the node, `hold` sends them to galerad's
 * own listener (which holds or refuses them) and keeps the running ones, `cut` also cuts those.
 * The flows it carries are counted per node for the API, the metrics and the drain.
 */
import { getLogger } from "@logtape/logtape";
import type { KernelFlows, KernelNode, NftPath } from "../dataplane/nft_path.ts";

const log = getLogger(["galerad", "proxy"]);

/** How often conntrack and the counters are read. */
const COUNT_EVERY_MS = 1000;

export type KernelWant =
  | { mode: "route"; node: KernelNode }
  | { mode: "hold" }
  | { mode: "cut" };

const same = (a: KernelWant, b: KernelWant) =>
  a.mode === b.mode && (a.mode !== "route" || a.node.name === (b as typeof a).node.name);

export class KernelRoute {
  /** What the kernel does now, as applied. */
  #applied: KernelWant = { mode: "cut" };
  /** The node the running flows belong to (the last routed one, until a cut). */
  #flowsOf: string | null = null;
  #wanted: KernelWant = { mode: "cut" };
  #busy = false;
  #timer: ReturnType<typeof setInterval>;
  /** Per node, as last read. */
  flows = new Map<string, KernelFlows>();

  constructor(
    readonly path: NftPath,
    /** Called after each applied change, and with the flows cut once their ends were woken. */
    readonly onChange: (cut: number) => void,
  ) {
    this.#timer = setInterval(() => void this.count(), COUNT_EVERY_MS);
    path.onLost = (why) => log.error("kernel path: {why}; making the route table again", { why });
  }

  /** True while flows to `node` may still pass: routed or held, until a change away applies. */
  carries(node: string): boolean {
    return this.#flowsOf === node;
  }

  /** Open flows now, all nodes. */
  get sessions(): number {
    let n = 0;
    for (const f of this.flows.values()) n += f.sessions;
    return n;
  }

  /** Asks for `want`; applied in order, the latest wish wins over ones not yet applied. */
  want(want: KernelWant): void {
    this.#wanted = want;
    if (!this.#busy && !same(want, this.#applied)) void this.#apply();
  }

  async #apply(): Promise<void> {
    this.#busy = true;
    try {
      while (!same(this.#wanted, this.#applied)) {
        const want = this.#wanted;
        const cuts = want.mode === "cut" ||
          (want.mode === "route" && want.node.name !== this.#flowsOf);
        try {
          if (want.mode === "route") await this.path.point(want.node);
          else if (want.mode === "cut") await this.path.point(null);
          else if (this.#applied.mode === "route") await this.path.drain();
        } catch (error) {
          // Tried again each second: the table may be being made again after a loss.
          log.error("kernel path: {error}", { error: String(error) });
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        this.#applied = want;
        if (want.mode === "route") this.#flowsOf = want.node.name;
        else if (want.mode === "cut") this.#flowsOf = null;
        this.onChange(0);
        if (cuts) void this.#wake();
      }
    } finally {
      this.#busy = false;
    }
    this.onChange(0);
  }

  /** Wakes the ends of the flows just cut, so idle clients see the close now. */
  async #wake(): Promise<void> {
    try {
      const { cut, left } = await this.path.wakeStale();
      if (left > 0) {
        log.warn(
          "kernel path: {left} cut flows did not answer the wake; they reset on their next packet",
          { left },
        );
      }
      await this.count();
      this.onChange(cut);
    } catch (error) {
      log.error("kernel path: cannot wake cut flows: {error}", { error: String(error) });
    }
  }

  /** Reads conntrack and the counters (every second, and after a cut). */
  async count(): Promise<void> {
    try {
      this.flows = await this.path.counts();
    } catch (error) {
      log.warn("kernel path: cannot read the flows: {error}", { error: String(error) });
    }
    this.onChange(0);
  }

  /** Cuts what runs and ends the route table; the guard stays (flows fail closed). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.path.close();
  }
}
