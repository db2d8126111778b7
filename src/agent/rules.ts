/**
 * What the agent reads from the local server: `SHOW GLOBAL STATUS` and `SHOW GLOBAL VARIABLES`
 * values by name, as text (absent variables are missing keys: MariaDB has no pxc_maint_mode).
 * One key comes from the host instead: `sst_donor_running` ("ON"/"OFF", absent when unknown)
 * says whether an SST script runs as donor, which tells an SST donor from an IST donor.
 */
export type GaleraReadings = Record<string, string>;

/** Rule switches an operator sets on the agent. */
export interface RuleOptions {
  availableWhenDonor: boolean;
  availableWhenReadOnly: boolean;
  /** Maintenance switched on at the agent (file or API), with its message; null when off. */
  maintenance: string | null;
}

/** The verdict: healthy or not, and one line saying why. */
export interface Verdict {
  healthy: boolean;
  reason: string;
}

export const STATUS_NAMES = [
  "wsrep_cluster_status",
  "wsrep_ready",
  "wsrep_connected",
  "wsrep_local_state",
  "wsrep_local_state_comment",
  "wsrep_local_index",
  "wsrep_cluster_size",
  "wsrep_cluster_state_uuid",
  "wsrep_last_committed",
] as const;

export const VARIABLE_NAMES = [
  "wsrep_on",
  "wsrep_desync",
  "wsrep_reject_queries",
  "wsrep_sst_donor_rejects_queries",
  "read_only",
  "pxc_maint_mode",
  "wsrep_node_name",
] as const;

const SYNCED = 4;
const DONOR = 2;

const on = (value: string | undefined) => value !== undefined && /^(ON|1|TRUE)$/i.test(value);

/**
 * Decides whether this node may take writes, by the union of Percona clustercheck's and MaxScale
 * galeramon's rules: Primary component, wsrep_ready, Synced (or Donor when allowed and the donor
 * does not reject queries), not desynced, not rejecting queries, not read-only (unless allowed),
 * not in maintenance. The first rule that fails is the reason.
 */
export function evaluate(readings: GaleraReadings, options: RuleOptions): Verdict {
  const fail = (reason: string): Verdict => ({ healthy: false, reason });
  if (options.maintenance !== null) {
    return fail(`maintenance mode on the agent: ${options.maintenance}`);
  }
  const maint = readings.pxc_maint_mode;
  if (maint !== undefined && maint.toUpperCase() !== "DISABLED") {
    return fail(`pxc_maint_mode is ${maint}`);
  }
  if (readings.wsrep_on !== undefined && !on(readings.wsrep_on)) {
    return fail("wsrep_on is OFF: not a Galera node");
  }
  const clusterStatus = readings.wsrep_cluster_status;
  if (clusterStatus === undefined) {
    return fail("wsrep_cluster_status is missing: Galera provider not loaded");
  }
  if (clusterStatus !== "Primary") {
    return fail(`wsrep_cluster_status is ${clusterStatus}, expected Primary`);
  }
  if (!on(readings.wsrep_ready)) {
    return fail(`wsrep_ready is ${readings.wsrep_ready ?? "missing"}, expected ON`);
  }
  if (on(readings.wsrep_desync)) return fail("wsrep_desync is ON");
  const state = Number(readings.wsrep_local_state);
  const comment = readings.wsrep_local_state_comment ?? "unknown";
  const istDonor = state === DONOR && readings.sst_donor_running === "OFF";
  if (istDonor) {
    // Serving IST from the gcache does not block writes: the node stays available.
  } else if (state === DONOR) {
    if (!options.availableWhenDonor) {
      return fail(`wsrep_local_state is 2 (${comment}) and donors are not available`);
    }
    if (on(readings.wsrep_sst_donor_rejects_queries)) {
      return fail("node is a donor and wsrep_sst_donor_rejects_queries is ON");
    }
  } else if (state !== SYNCED) {
    return fail(
      `wsrep_local_state is ${
        readings.wsrep_local_state ?? "missing"
      } (${comment}), expected 4 (Synced)`,
    );
  }
  const reject = readings.wsrep_reject_queries;
  if (reject !== undefined && reject.toUpperCase() !== "NONE") {
    return fail(`wsrep_reject_queries is ${reject}`);
  }
  if (on(readings.read_only) && !options.availableWhenReadOnly) return fail("read_only is ON");
  return {
    healthy: true,
    reason: istDonor
      ? "Galera node is an IST donor (IST does not block writes)"
      : state === DONOR
      ? "Galera node is a donor (available)"
      : "Galera node is synced",
  };
}
