/**
 * Waits for the lab clients to get further, and when they do not, says what the lab looked
 * like: the clients' counts, each node's Galera state and each proxy's route. A rare stall in a
 * full suite run then names where it was instead of only that it timed out.
 */
import { waitFor } from "../../scripts/lab/fixtures.ts";
import type { Lab } from "../../scripts/lab/lab.ts";
import type { Tier } from "../../scripts/lab/tier.ts";
import type { ClientStats } from "./lab_clients.ts";

/** Bounds each question asked of a node or a proxy while reporting. */
const ASK_MS = 5000;

function bounded<T>(p: Promise<T>): Promise<T | "no answer"> {
  return Promise.race([
    p.catch(() => "no answer" as const),
    new Promise<"no answer">((r) => setTimeout(() => r("no answer"), ASK_MS)),
  ]);
}

/** One line: the clients, every node's state, every running proxy's route. */
export async function stallReport(lab: Lab, stats: ClientStats, tier?: Tier): Promise<string> {
  const nodes = await Promise.all(
    Array.from({ length: lab.nodes }, async (_, i) => {
      const [state, status] = await Promise.all([
        bounded(lab.status(i, "wsrep_local_state_comment")),
        bounded(lab.status(i, "wsrep_cluster_status")),
      ]);
      return `node${i} ${state ?? "down"}/${status ?? "down"}`;
    }),
  );
  const proxies = tier
    ? await Promise.all(
      [...tier.members.values()].filter((m) => m.daemon).map(async (m) => {
        const c = await bounded(tier.cluster(m.name));
        return c === "no answer"
          ? `${m.name} no answer`
          : `${m.name} → ${c.activeBackend ?? "none"} (${c.activeReason})`;
      }),
    )
    : [];
  const last = stats.lastOkAt ? `${Date.now() - stats.lastOkAt} ms ago` : "never";
  return `clients: ok ${stats.ok}, 1213 ${stats.deadlocks}, other ${stats.otherErrors}, stalled ${stats.stalled}, last ok ${last}; ${
    nodes.join(", ")
  }${proxies.length ? `; ${proxies.join(", ")}` : ""}`;
}

/** Waits until `stats.ok` passes `atLeast`; on timeout the error carries a `stallReport`. */
export async function waitForOk(
  what: string,
  stats: ClientStats,
  atLeast: number,
  timeoutMs: number,
  lab: Lab,
  tier?: Tier,
): Promise<void> {
  try {
    await waitFor(what, () => stats.ok > atLeast, timeoutMs);
  } catch (error) {
    throw new Error(`${(error as Error).message}; ${await stallReport(lab, stats, tier)}`);
  }
}
