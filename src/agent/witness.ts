import { getLogger } from "@logtape/logtape";
import { bindUdp } from "#runtime";
import type { HostPort } from "../core/address.ts";
import type { AgreementTimers } from "../core/agreement.ts";
import { applyProbe, type HealthState, initialHealth } from "../core/health_state.ts";
import type { HealthView } from "../core/health_view.ts";
import {
  startWitness,
  type WitnessEffect,
  type WitnessState,
  witnessStep,
} from "../core/witness.ts";
import {
  DecodeError,
  decodeMessage,
  type DropReason,
  encodeMessage,
  type PeerMessage,
} from "../peers/codec.ts";
import type { KeyRing } from "../peers/keyring.ts";
import { type Bucket, SHARED_BUDGET, spend } from "../peers/rate_limit.ts";
import { checkReplay, type ReplayState } from "../peers/replay.ts";
import { readStateFile, writeStateFile } from "../peers/state_file.ts";
import type { UdpSocket } from "../runtime/types.ts";
import { clock } from "../proxy/agreement_shell.ts";
import { HealthMonitor, type Prober } from "../proxy/health_monitor.ts";

const log = getLogger(["galerad", "agent", "vote"]);

export interface WitnessOptions {
  listen: HostPort;
  cluster: string;
  /** The name proxies must address this agent by; null: whatever their backend name is. */
  name: string | null;
  keys: KeyRing;
  timers: AgreementTimers;
  stateFile?: string;
  /** Probing the nodes this agent judges: the same timing as a proxy's. */
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
}

/** At most this many proxies are remembered for anti-replay; the oldest is forgotten first. */
const MAX_SENDERS = 256;
/**
 * Datagrams per second from an address that sent a valid message before (its own budget), and
 * from all other addresses together: a proxy asks a few times a second, so a flood is cut before
 * its HMACs cost the agent's main thread, and never takes the budget of a proxy already heard.
 */
const KNOWN_RATE = { perSecond: 500, burst: 500 };
const OTHER_RATE = { perSecond: 1000, burst: 1000 };

/**
 * The agent's vote in `--quorum agents`: a UDP endpoint that answers proxies' lease requests by
 * the witness core (core/witness.ts). It judges every proposal by its own probes of the nodes'
 * agents, so a proxy cut off from the active node cannot move the group. Replies go back to the
 * address their holder was last heard from.
 */
export class WitnessEndpoint {
  state: WitnessState;
  readonly counters = {
    received: 0,
    sent: 0,
    dropped: {} as Partial<Record<DropReason, number>>,
  };
  readonly bootId = crypto.getRandomValues(new Uint8Array(8));
  #seq = 0;
  #socket: UdpSocket | null = null;
  #replay = new Map<string, ReplayState>();
  #health = new Map<string, HealthState>();
  #monitor: HealthMonitor;
  #watched = new Map<string, string>();
  /** Budgets by source address (host:port) heard from, and SHARED_BUDGET for everyone else. */
  #buckets = new Map<string, Bucket>();
  /**
   * Where each holder was last heard from: an answer goes there, also one given later than the
   * request that asked (a grant that waited on another holder's release).
   */
  #holders = new Map<string, HostPort>();

  constructor(readonly options: WitnessOptions, prober?: Prober) {
    const saved = options.stateFile
      ? readStateFile(
        options.stateFile,
        options.cluster,
        (file) =>
          log.warn("state file {file} is empty: starting without remembered state", { file }),
      )
      : null;
    const bytes = crypto.getRandomValues(new Uint8Array(6));
    this.state = startWitness(
      { cluster: options.cluster, name: options.name, timers: options.timers },
      {
        incarnation: Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(""),
        now: clock(),
        saved: saved?.register,
      },
    );
    this.#monitor = new HealthMonitor(
      { intervalMs: options.intervalMs, timeoutMs: options.timeoutMs },
      (name, result) => {
        if (!this.#watched.has(name)) return;
        const before = this.#health.get(name) ?? initialHealth();
        const { state, changed } = applyProbe(before, result, {
          rise: options.rise,
          fall: options.fall,
          now: Date.now(),
        });
        this.#health.set(name, state);
        if (changed) this.#feed({ type: "view", view: this.view() });
      },
      prober,
    );
  }

  get port(): number {
    return this.#socket?.port ?? this.options.listen.port;
  }

  async start(): Promise<void> {
    this.#socket = await bindUdp(
      this.options.listen,
      (data, from) => void this.#receive(data, from),
    );
    log.info("voting on udp {host}:{port} (cluster {cluster})", {
      host: this.options.listen.host,
      port: this.port,
      cluster: this.options.cluster,
    });
  }

  stop(): void {
    this.#monitor.stop();
    this.#socket?.close();
    this.#socket = null;
  }

  /** This agent's own view of the nodes it judges (from probing their agents). */
  view(): HealthView {
    const view: HealthView = {};
    for (const [name, h] of this.#health) {
      if (h.status === "unknown" || !this.#watched.has(name)) continue;
      view[name] = { healthy: h.status === "healthy", index: h.wsrepLocalIndex };
    }
    return view;
  }

  #drop(reason: DropReason, detail: string): void {
    this.counters.dropped[reason] = (this.counters.dropped[reason] ?? 0) + 1;
    log.debug("dropped a vote datagram ({reason}): {detail}", { reason, detail });
  }

  async #receive(data: Uint8Array, from: HostPort): Promise<void> {
    const source = `${from.host}:${from.port}`;
    const known = this.#buckets.has(source);
    const budget = known ? source : SHARED_BUDGET;
    if (!spend(this.#buckets, budget, performance.now(), known ? KNOWN_RATE : OTHER_RATE)) {
      return this.#drop("rate_limited", source);
    }
    let message: PeerMessage;
    let envelope;
    try {
      ({ message, envelope } = await decodeMessage(data, this.options.keys));
    } catch (error) {
      if (error instanceof DecodeError) return this.#drop(error.reason, error.message);
      return this.#drop("malformed", String(error));
    }
    const key = `${message.from}@${from.host}`;
    const replay = checkReplay(this.#replay.get(key), envelope);
    if ("drop" in replay) return this.#drop(replay.drop, `${message.from} seq ${envelope.seq}`);
    this.#replay.delete(key);
    this.#replay.set(key, replay.state);
    if (this.#replay.size > MAX_SENDERS) this.#replay.delete(this.#replay.keys().next().value!);
    this.counters.received++;
    if (!known) this.#know(source);
    this.#holders.delete(message.from);
    this.#holders.set(message.from, from);
    if (this.#holders.size > MAX_SENDERS) this.#holders.delete(this.#holders.keys().next().value!);
    this.#feed({ type: "message", message });
  }

  /** `source` sent a valid message: it gets a budget of its own (the oldest is forgotten). */
  #know(source: string): void {
    this.#buckets.set(source, { tokens: KNOWN_RATE.burst, at: performance.now() });
    if (this.#buckets.size <= MAX_SENDERS + 1) return;
    for (const key of this.#buckets.keys()) {
      if (key !== SHARED_BUDGET) return void this.#buckets.delete(key);
    }
  }

  #feed(event: Parameters<typeof witnessStep>[1]): void {
    const { state, effects } = witnessStep(this.state, event, clock());
    this.state = state;
    for (const effect of effects) this.#apply(effect);
  }

  #apply(effect: WitnessEffect): void {
    switch (effect.type) {
      case "send": {
        const socket = this.#socket;
        const replyTo = this.#holders.get(effect.message.to);
        if (!socket || !replyTo) return;
        encodeMessage(effect.message, { bootId: this.bootId, seq: ++this.#seq }, this.options.keys)
          .then((data) => {
            socket.send(data, replyTo, (error) => {
              if (!error) this.counters.sent++;
            });
          }, (error) => log.error("cannot encode a vote: {error}", { error: String(error) }));
        return;
      }
      case "persist":
        if (!this.options.stateFile) return;
        try {
          writeStateFile(this.options.stateFile, {
            register: effect.register,
            epochSeen: effect.register.epoch,
          });
        } catch (error) {
          log.error("cannot persist the vote to {file}: {error}", {
            file: this.options.stateFile,
            error: String(error),
          });
        }
        return;
      case "targets":
        for (const [name, url] of Object.entries(effect.targets)) {
          if (this.#watched.get(name) === url) continue;
          this.#watched.set(name, url);
          this.#health.delete(name);
          this.#monitor.watch(name, url);
          log.info("judging {name} by its agent at {url}", { name, url });
        }
        for (const name of [...this.#watched.keys()]) {
          if (name in effect.targets) continue;
          this.#watched.delete(name);
          this.#health.delete(name);
          this.#monitor.unwatch(name);
        }
        return;
      case "drop":
        return this.#drop(effect.reason, "refused by the vote");
      case "log":
        if (effect.level === "warn") log.warn("{message}", { message: effect.message });
        else log.info("{message}", { message: effect.message });
        return;
    }
  }
}
