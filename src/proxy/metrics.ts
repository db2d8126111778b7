import { type Histogram, histogramLines } from "../core/histogram.ts";
import { liveGrants } from "../core/lease_holder.ts";
import { VERSION } from "../version.ts";
import type { Proxy } from "./proxy.ts";
import { DROP_REASONS } from "../peers/codec.ts";
import { READER_REFUSALS, WRITER_REFUSALS } from "./refusal.ts";
import { byReason } from "./by_reason.ts";

type Sample = [labels: Record<string, string>, value: number];

/** Builds Prometheus text exposition: one family at a time, each with HELP and TYPE. */
class Exposition {
  #lines: string[] = [];

  family(name: string, type: "gauge" | "counter", help: string, samples: Sample[]): this {
    this.#lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      this.#lines.push(`${name}${this.#labels(labels)} ${Number.isFinite(value) ? value : "NaN"}`);
    }
    return this;
  }

  /** A histogram family: one `_bucket`/`_sum`/`_count` series set per label set. */
  histograms(name: string, help: string, samples: [Record<string, string>, Histogram][]): this {
    this.#lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
    for (const [labels, h] of samples) {
      this.#lines.push(...histogramLines(name, labels, h, (l) => this.#labels(l)));
    }
    return this;
  }

  #labels(labels: Record<string, string>): string {
    const entries = Object.entries(labels);
    return entries.length === 0
      ? ""
      : `{${
        entries.map(([k, v]) =>
          `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`
        ).join(",")
      }}`;
  }

  toString(): string {
    return this.#lines.join("\n") + "\n";
  }
}

/**
 * The proxy's metrics in Prometheus text format: sessions, refusals, severed sessions, bytes,
 * probes, active-node changes, the register epoch, peers and gossip. Names `galerad_*`, units in
 * the names.
 */
export function renderMetrics(proxy: Proxy): string {
  const backends = [...proxy.backends.values()];
  const by = (fn: (b: (typeof backends)[number]) => number): Sample[] =>
    backends.map((b) => [{ backend: b.spec.name }, fn(b)]);
  const bytes = proxy.bytes;
  const c = proxy.counters;
  const out = new Exposition()
    .family("galerad_build_info", "gauge", "Version of this galerad, as a label.", [[{
      version: VERSION,
    }, 1]])
    .family(
      "galerad_backend_sessions",
      "gauge",
      "Client sessions open to each backend.",
      by((b) => proxy.sessionsOn(b)),
    )
    .family(
      "galerad_backend_reader_sessions",
      "gauge",
      "Reader-port sessions open to each backend.",
      by((b) => proxy.reader?.sessionsOn(b.spec.name) ?? 0),
    )
    .family(
      "galerad_reader_sessions_total",
      "counter",
      "Reader-port sessions accepted.",
      [[{}, proxy.reader?.counters.accepted ?? 0]],
    )
    .family(
      "galerad_reader_refused_total",
      "counter",
      "Reader-port clients refused, by reason.",
      proxy.reader ? byReason(READER_REFUSALS, proxy.reader.counters.refused) : [],
    )
    .family(
      "galerad_backend_healthy",
      "gauge",
      "1 when this proxy sees the backend healthy.",
      by((b) => (b.health.status === "healthy" ? 1 : 0)),
    )
    .family(
      "galerad_backend_active",
      "gauge",
      "1 for the backend this proxy routes new sessions to.",
      by((b) => (proxy.active === b.spec.name ? 1 : 0)),
    )
    .family(
      "galerad_backend_maintenance",
      "gauge",
      "1 when an operator drained the backend.",
      by((b) => (b.maintenance ? 1 : 0)),
    )
    .family(
      "galerad_backend_wsrep_local_index",
      "gauge",
      "wsrep_local_index reported by the backend's agent (-1 when unknown).",
      by((b) => b.health.wsrepLocalIndex ?? -1),
    )
    .family(
      "galerad_health_probe_duration_seconds",
      "gauge",
      "Duration of the last health probe of each backend.",
      by((b) => (b.health.lastProbe?.latencyMs ?? 0) / 1000),
    )
    .histograms(
      "galerad_health_probe_latency_seconds",
      "Health probe latency per backend, from the request to the last byte of the answer.",
      backends.map((b) => [{ backend: b.spec.name }, proxy.histograms.probe(b.spec.name)]),
    )
    .histograms(
      "galerad_backend_connect_seconds",
      "Time to connect to a backend for a new client session (writer and reader ports).",
      backends.map((b) => [{ backend: b.spec.name }, proxy.histograms.connect(b.spec.name)]),
    )
    .histograms(
      "galerad_failover_seconds",
      "Failovers as this proxy saw them: from seeing the active node down to the first session on the next node.",
      [[{}, proxy.histograms.failover]],
    )
    .histograms(
      "galerad_sever_seconds",
      "Severs of a node's sessions: from the decision to the data plane's last close.",
      [[{}, proxy.histograms.sever]],
    )
    .family(
      "galerad_health_probes_total",
      "counter",
      "Health probes made, per backend.",
      by((b) => b.probes),
    )
    .family(
      "galerad_health_probe_failures_total",
      "counter",
      "Health probes that failed or said unhealthy, per backend.",
      by((b) => b.probeFailures),
    )
    .family("galerad_sessions_accepted_total", "counter", "Client sessions routed to a backend.", [[
      {},
      proxy.accepted,
    ]])
    .family(
      "galerad_sessions_refused_total",
      "counter",
      "Client sessions refused with a MySQL error packet, by reason.",
      byReason(WRITER_REFUSALS, c.refused),
    )
    .family(
      "galerad_sessions_severed_total",
      "counter",
      "Sessions closed because their node stopped being active (or traffic was disabled).",
      [[{}, c.severed]],
    )
    .family(
      "galerad_backend_connect_failures_total",
      "counter",
      "Failed connections to the active node.",
      [[{}, c.connectFailures]],
    )
    .family(
      "galerad_bytes_total",
      "counter",
      "Bytes proxied, client to backend (up) and backend to client (down).",
      [
        [{ direction: "up" }, bytes.up],
        [{ direction: "down" }, bytes.down],
      ],
    )
    .family(
      "galerad_active_changes_total",
      "counter",
      "Changes of the active node, by reason (initial, failover, switchover).",
      Object.entries(c.activeChanges).map(([reason, n]) => [{ reason }, n]),
    )
    .family("galerad_register_epoch", "gauge", "Epoch of the replicated register.", [[
      {},
      proxy.register.epoch,
    ]])
    .family("galerad_traffic_enabled", "gauge", "1 while traffic is enabled.", [[
      {},
      proxy.traffic.enabled ? 1 : 0,
    ]])
    .family(
      "galerad_ready",
      "gauge",
      "1 once this proxy can route (probed and register learned).",
      [[{}, proxy.ready ? 1 : 0]],
    )
    .family(
      "galerad_data_plane_threads",
      "gauge",
      "Threads carrying client sessions (--threads auto adds some under load).",
      [[{}, proxy.threads]],
    );
  const shell = proxy.shell;
  if (shell) {
    const s = shell.state;
    const now = performance.now();
    const live = s.config.voters.filter((v) => {
      if (v === s.config.self) return true;
      const p = s.parties[v];
      return p?.at != null && now - p.at <= s.config.timers.leaseMs && p.mismatch === null;
    });
    // The holder's own rule (lease_holder.ts), so the gauge counts what the proxy counts.
    const current = liveGrants(s.holder, now, s.config.timers);
    const granted = s.config.voters.filter((v) => current[v]?.node === s.holder.serving);
    out
      .family("galerad_quorum_voters", "gauge", "Voters in this proxy's fixed voter set.", [[
        { mode: s.config.mode },
        s.config.voters.length,
      ]])
      .family("galerad_quorum_voters_heard", "gauge", "Voters heard within a lease.", [[
        {},
        live.length,
      ]])
      .family(
        "galerad_quorum_grants",
        "gauge",
        "Voters whose lease on the node served here is current.",
        [[{}, granted.length]],
      )
      .family(
        "galerad_peers_voter_set_mismatch",
        "gauge",
        "Parties whose voter-set digest differs from ours (not counted).",
        [[{}, Object.values(s.parties).filter((p) => p.mismatch !== null).length]],
      );
  }
  const transport = proxy.transport;
  if (transport) {
    const parties = [...transport.parties.values()];
    out
      .family("galerad_peers_configured", "gauge", "Parties this proxy talks to over UDP.", [[
        {},
        parties.length,
      ]])
      .family("galerad_gossip_packets_sent_total", "counter", "Peer datagrams sent.", [[
        {},
        transport.counters.sent,
      ]])
      .family("galerad_gossip_packets_received_total", "counter", "Peer datagrams accepted.", [[
        {},
        transport.counters.received,
      ]])
      .family(
        "galerad_gossip_bytes_sent_total",
        "counter",
        "UDP payload bytes of the peer datagrams sent.",
        [[{}, transport.counters.bytesSent]],
      )
      .family(
        "galerad_gossip_bytes_received_total",
        "counter",
        "UDP payload bytes of the peer datagrams accepted.",
        [[{}, transport.counters.bytesReceived]],
      )
      .family(
        "galerad_gossip_news_same_total",
        "counter",
        'News that went as "same" (unchanged, a hash in place of the state), counted in the packets too.',
        [
          [{ direction: "sent" }, transport.counters.sameSent],
          [{ direction: "received" }, transport.counters.sameReceived],
        ],
      )
      .family(
        "galerad_gossip_send_failures_total",
        "counter",
        "Peer datagrams the kernel refused to send, by party.",
        parties.map((p) => [{ peer: p.name }, p.sendFailures]),
      )
      .family(
        "galerad_gossip_packets_dropped_total",
        "counter",
        "Peer datagrams dropped, by reason.",
        byReason(DROP_REASONS, transport.counters.dropped),
      );
  }
  return out.toString();
}
