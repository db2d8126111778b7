/** What the survey learned about one node through its agent. */
export interface NodeSurvey {
  name: string;
  /** The agent answered; false when it is down or refused us. */
  reachable: boolean;
  /** Why the node could not be read, when it could not. */
  error?: string;
  /** running, stopped, starting or failing (from GET /mysql_status). */
  mysql?: "running" | "stopped" | "starting" | "failing";
  /** From GET /api/v1/status while the server runs. */
  synced?: boolean;
  primary?: boolean;
  /** From GET /sequence_number while the server is stopped. */
  uuid?: string;
  seqno?: number;
  safeToBootstrap?: boolean;
}

/** The plan, or the refusal. */
export type Plan =
  | { action: "nothing"; reasons: string[] }
  | { action: "join"; join: string[]; reasons: string[] }
  | { action: "bootstrap"; bootstrap: string; join: string[]; reasons: string[] }
  | { action: "refuse"; reasons: string[] };

const ZERO_UUID = "00000000-0000-0000-0000-000000000000";

/**
 * Decides how to bring a cluster back, from what every agent said. Pure: the same survey gives
 * the same plan, ties included.
 *
 * - Some node Synced in a Primary component: the cluster is up; stopped nodes join it, one at a time.
 * - Nodes running without a Primary component: refused (stop them first; a running server is
 *   never stopped here).
 * - Otherwise every node must have been read (an unreadable one might hold the newest state)
 *   unless `force`; all must share one cluster UUID; the node with safe_to_bootstrap: 1 wins,
 *   else the highest seqno, ties broken by name; a safe_to_bootstrap node that another node
 *   outruns in seqno is conflicting evidence and refused unless `force`.
 */
export function planBootstrap(
  nodes: readonly NodeSurvey[],
  options: { force?: boolean } = {},
): Plan {
  const byName = [...nodes].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const unreadable = byName.filter((n) => !n.reachable);
  const up = byName.filter((n) => n.reachable && n.mysql === "running" && n.synced && n.primary);
  const down = byName.filter((n) =>
    n.reachable && (n.mysql === "stopped" || n.mysql === "failing")
  );
  if (up.length > 0) {
    const reasons = [
      `cluster is up: ${up.map((n) => n.name).join(", ")} Synced in a Primary component`,
    ];
    for (const n of unreadable) {
      reasons.push(`${n.name} cannot be read (${n.error ?? "no answer"}): left alone`);
    }
    if (down.length === 0) {
      return { action: "nothing", reasons: [...reasons, "no stopped node to join"] };
    }
    return {
      action: "join",
      join: down.map((n) => n.name),
      reasons: [...reasons, `joining ${down.map((n) => n.name).join(", ")} one at a time`],
    };
  }
  const running = byName.filter((n) =>
    n.reachable && (n.mysql === "running" || n.mysql === "starting")
  );
  if (running.length > 0) {
    return {
      action: "refuse",
      reasons: [
        `${
          running.map((n) => `${n.name} (${n.mysql})`).join(", ")
        } running without a Primary component: stop every node first (galerad bootstrap never stops a running server)`,
      ],
    };
  }
  if (unreadable.length > 0 && !options.force) {
    return {
      action: "refuse",
      reasons: unreadable.map((n) =>
        `${n.name} cannot be read (${
          n.error ?? "no answer"
        }): it might hold the newest state; bring its agent back or pass --force`
      ),
    };
  }
  const readable = down.filter((n) => n.uuid !== undefined && n.seqno !== undefined);
  const missing = down.filter((n) => n.uuid === undefined || n.seqno === undefined);
  if (missing.length > 0 && !options.force) {
    return {
      action: "refuse",
      reasons: missing.map((n) =>
        `${n.name} reported no sequence number (${
          n.error ?? "unknown"
        }); pass --force to leave it out`
      ),
    };
  }
  if (readable.length === 0) {
    return { action: "refuse", reasons: ["no node reported a sequence number"] };
  }
  const groups = new Map<string, string[]>();
  for (const n of readable) {
    if (n.uuid === ZERO_UUID) continue;
    groups.set(n.uuid!, [...(groups.get(n.uuid!) ?? []), n.name]);
  }
  if (groups.size > 1) {
    return {
      action: "refuse",
      reasons: [
        `nodes disagree on the cluster UUID: ${
          [...groups].map(([uuid, names]) =>
            `${names.join(", ")} ${names.length > 1 ? "have" : "has"} ${uuid}`
          ).join("; ")
        }`,
      ],
    };
  }
  const candidates = readable.filter((n) => n.uuid !== ZERO_UUID);
  if (candidates.length === 0) {
    return { action: "refuse", reasons: ["no node has any cluster state (all UUIDs are zero)"] };
  }
  const best = [...candidates].sort((a, b) => b.seqno! - a.seqno! || (a.name < b.name ? -1 : 1))[0];
  const safe = candidates.filter((n) => n.safeToBootstrap);
  const reasons: string[] = [];
  for (const n of readable) {
    reasons.push(
      `${n.name}: uuid ${n.uuid}, seqno ${n.seqno}, safe_to_bootstrap ${n.safeToBootstrap ? 1 : 0}`,
    );
  }
  for (const n of unreadable) reasons.push(`${n.name}: not read, left out (--force)`);
  let chosen: NodeSurvey;
  if (safe.length === 1) {
    chosen = safe[0];
    if (best.seqno! > chosen.seqno! && !options.force) {
      return {
        action: "refuse",
        reasons: [
          ...reasons,
          `${chosen.name} has safe_to_bootstrap: 1 but ${best.name} has a higher seqno (${best.seqno} > ${chosen.seqno}): conflicting evidence; check both and pass --force to bootstrap ${chosen.name}`,
        ],
      };
    }
    reasons.push(`${chosen.name} has safe_to_bootstrap: 1 (it left the cluster last, cleanly)`);
  } else {
    chosen = best;
    const ties = candidates.filter((n) => n.seqno === best.seqno).map((n) => n.name);
    reasons.push(
      ties.length > 1
        ? `${
          ties.join(", ")
        } share the highest seqno ${best.seqno}; ${chosen.name} comes first by name`
        : `${chosen.name} has the highest seqno ${best.seqno}`,
    );
  }
  const join = readable.filter((n) => n !== chosen).map((n) => n.name);
  return { action: "bootstrap", bootstrap: chosen.name, join, reasons };
}
