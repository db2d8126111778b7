import { describe, expect, test } from "bun:test";
import { evaluate, type GaleraReadings, type RuleOptions } from "../../src/agent/rules.ts";

const synced: GaleraReadings = {
  wsrep_on: "ON",
  wsrep_cluster_status: "Primary",
  wsrep_ready: "ON",
  wsrep_local_state: "4",
  wsrep_local_state_comment: "Synced",
  wsrep_desync: "OFF",
  wsrep_reject_queries: "NONE",
  wsrep_sst_donor_rejects_queries: "OFF",
  read_only: "OFF",
};
const defaults: RuleOptions = {
  availableWhenDonor: false,
  availableWhenReadOnly: false,
  maintenance: null,
};
const donor = { ...synced, wsrep_local_state: "2", wsrep_local_state_comment: "Donor/Desynced" };

describe("evaluate()", () => {
  test("a synced node in a Primary component is healthy", () => {
    expect(evaluate(synced, defaults)).toEqual({ healthy: true, reason: "Galera node is synced" });
  });

  test("each failing rule is the reason", () => {
    const cases: [Partial<GaleraReadings>, string][] = [
      [
        { wsrep_cluster_status: "non-Primary" },
        "wsrep_cluster_status is non-Primary, expected Primary",
      ],
      [{ wsrep_ready: "OFF" }, "wsrep_ready is OFF, expected ON"],
      [
        { wsrep_local_state: "1", wsrep_local_state_comment: "Joining" },
        "wsrep_local_state is 1 (Joining), expected 4 (Synced)",
      ],
      [
        { wsrep_local_state: "3", wsrep_local_state_comment: "Joined" },
        "wsrep_local_state is 3 (Joined), expected 4 (Synced)",
      ],
      [{ wsrep_desync: "ON" }, "wsrep_desync is ON"],
      [{ wsrep_reject_queries: "ALL" }, "wsrep_reject_queries is ALL"],
      [{ read_only: "ON" }, "read_only is ON"],
      [{ wsrep_on: "OFF" }, "wsrep_on is OFF: not a Galera node"],
      [{ pxc_maint_mode: "MAINTENANCE" }, "pxc_maint_mode is MAINTENANCE"],
    ];
    for (const [change, reason] of cases) {
      expect(evaluate({ ...synced, ...change } as GaleraReadings, defaults)).toEqual({
        healthy: false,
        reason,
      });
    }
  });

  test("a server without the Galera provider is unhealthy", () => {
    const { wsrep_cluster_status: _, ...noProvider } = synced;
    expect(evaluate(noProvider, defaults).reason).toContain("Galera provider not loaded");
  });

  test("pxc_maint_mode DISABLED is fine", () => {
    expect(evaluate({ ...synced, pxc_maint_mode: "DISABLED" }, defaults).healthy).toBe(true);
  });

  test("a donor is healthy only with availableWhenDonor, and never when it rejects queries", () => {
    expect(evaluate(donor, defaults)).toEqual({
      healthy: false,
      reason: "wsrep_local_state is 2 (Donor/Desynced) and donors are not available",
    });
    expect(evaluate(donor, { ...defaults, availableWhenDonor: true })).toEqual({
      healthy: true,
      reason: "Galera node is a donor (available)",
    });
    expect(
      evaluate({ ...donor, wsrep_sst_donor_rejects_queries: "ON" }, {
        ...defaults,
        availableWhenDonor: true,
      }).reason,
    )
      .toBe("node is a donor and wsrep_sst_donor_rejects_queries is ON");
  });

  test("an IST donor (no SST script running) stays available; an SST donor does not", () => {
    expect(evaluate({ ...donor, sst_donor_running: "OFF" }, defaults)).toEqual({
      healthy: true,
      reason: "Galera node is an IST donor (IST does not block writes)",
    });
    expect(evaluate({ ...donor, sst_donor_running: "ON" }, defaults).healthy).toBe(false);
    expect(evaluate({ ...donor, sst_donor_running: "OFF", wsrep_desync: "ON" }, defaults).reason)
      .toBe("wsrep_desync is ON");
  });

  test("a desynced node is unhealthy even when donors are allowed", () => {
    expect(
      evaluate({ ...donor, wsrep_desync: "ON" }, { ...defaults, availableWhenDonor: true }).reason,
    ).toBe("wsrep_desync is ON");
  });

  test("read_only is allowed with availableWhenReadOnly", () => {
    expect(
      evaluate({ ...synced, read_only: "ON" }, { ...defaults, availableWhenReadOnly: true })
        .healthy,
    ).toBe(true);
  });

  test("maintenance on the agent wins over everything", () => {
    expect(evaluate(synced, { ...defaults, maintenance: "kernel upgrade" })).toEqual({
      healthy: false,
      reason: "maintenance mode on the agent: kernel upgrade",
    });
  });
});
