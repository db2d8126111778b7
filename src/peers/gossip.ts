import { getLogger } from "@logtape/logtape";
import { bindUdp } from "#runtime";
import type { HostPort } from "../core/address.ts";
import type { HealthView } from "../core/group_decision.ts";
import { compareRegisters, type Register } from "../core/register.ts";
import type { UdpSocket } from "../runtime/types.ts";
import {
  DecodeError,
  decodeMessage,
  type DropReason,
  encodeMessage,
  MessageType,
  type PeerMessage,
} from "./codec.ts";
import type { KeyRing } from "./keyring.ts";
import { checkReplay, type ReplayState } from "./replay.ts";

const log = getLogger(["galerad", "peers"]);

/** A proxy this one gossips with. */
export interface PeerSpec {
  name: string;
  host: string;
  port: number;
}

/** Gossip settings; docs/peers.md explains each timer. */
export interface GossipOptions {
  self: string;
  cluster: string;
  listen: HostPort;
  peers: PeerSpec[];
  keys: KeyRing;
  /** Anti-entropy: every peer gets our state this often. */
  intervalMs: number;
  /** A peer not heard from for this long is not live: it no longer counts toward a majority. */
  peerTimeoutMs: number;
  /** This proxy's API URL, told to peers for their springboard. */
  api?: string;
  /** Extra copies of a changed register, to ride out a lost datagram. */
  retransmits: number;
  retransmitGapMs: number;
}

/** What the gossip loop asks of its owner (the proxy). */
export interface GossipHost {
  /** This proxy's state, sent in every datagram. */
  snapshot(): { register: Register; view: HealthView; ready: boolean };
  /** A verified, fresh message from a known peer. */
  onMessage(message: PeerMessage): void;
  /** A peer became live or stopped being live. */
  onLiveness(name: string, live: boolean): void;
}

/** What is known about one peer. */
export interface PeerState {
  spec: PeerSpec;
  live: boolean;
  lastSeen: number | null;
  boot: number | null;
  register: Register | null;
  view: HealthView;
  ready: boolean;
  /** The peer's API URL, when it advertises one. */
  api: string | null;
  replay?: ReplayState;
}

/** A configured peer not heard from yet. */
function unknownPeer(spec: PeerSpec): PeerState {
  return {
    spec,
    live: false,
    lastSeen: null,
    boot: null,
    register: null,
    view: {},
    ready: false,
    api: null,
  };
}

/** Counters for the API and metrics. */
export interface GossipCounters {
  sent: number;
  received: number;
  dropped: Partial<Record<DropReason, number>>;
}

/**
 * The UDP gossip loop. Every datagram carries the whole register and this proxy's health view,
 * so gossip is also anti-entropy: state goes to every peer every `intervalMs`, and at once (with
 * retransmits) when it changes; a peer that sends an older register gets ours back at once.
 * Datagrams are signed and replay-checked; anything else is dropped and counted.
 */
export class PeerGroup {
  readonly peers = new Map<string, PeerState>();
  readonly counters: GossipCounters = { sent: 0, received: 0, dropped: {} };
  readonly boot = Date.now();
  readonly bootId = crypto.getRandomValues(new Uint8Array(8));
  #seq = 0;
  #socket: UdpSocket | null = null;
  #timer: ReturnType<typeof setInterval> | undefined;
  #pending = new Set<ReturnType<typeof setTimeout>>();

  constructor(readonly options: GossipOptions, readonly host: GossipHost) {
    for (const spec of options.peers) {
      this.peers.set(spec.name, unknownPeer(spec));
    }
  }

  get port(): number {
    return this.#socket?.port ?? this.options.listen.port;
  }

  /** Binds the peer port, says hello to every peer, and starts the anti-entropy timer. */
  async start(): Promise<void> {
    this.#socket = await bindUdp(this.options.listen, (data) => void this.#receive(data));
    log.info("gossiping on udp {host}:{port} with {peers}", {
      host: this.options.listen.host,
      port: this.port,
      peers: this.options.peers.map((p) => p.name),
    });
    this.#sendAll(MessageType.Hello);
    this.#timer = setInterval(() => this.#tick(), this.options.intervalMs);
  }

  stop(): void {
    clearInterval(this.#timer);
    for (const t of this.#pending) clearTimeout(t);
    this.#socket?.close();
    this.#socket = null;
  }

  /** Sends our state to every peer now, plus `retransmits` copies a little later. */
  push(): void {
    this.#sendAll(MessageType.State);
    for (let i = 1; i <= this.options.retransmits; i++) {
      const t = setTimeout(() => {
        this.#pending.delete(t);
        this.#sendAll(MessageType.State);
      }, this.options.retransmitGapMs * i);
      this.#pending.add(t);
    }
  }

  /** Follows a new peer list (from a registry): new peers are greeted, removed ones forgotten. */
  setPeers(specs: PeerSpec[]): void {
    const wanted = new Map(
      specs.filter((p) => p.name !== this.options.self).map((p) => [p.name, p]),
    );
    for (const [name, peer] of this.peers) {
      const next = wanted.get(name);
      if (next && next.host === peer.spec.host && next.port === peer.spec.port) continue;
      this.peers.delete(name);
      log.info("peer {peer} removed (registry)", { peer: name });
      if (peer.live) this.host.onLiveness(name, false);
    }
    for (const [name, spec] of wanted) {
      if (this.peers.has(name)) continue;
      this.peers.set(name, unknownPeer(spec));
      log.info("peer {peer} added ({host}:{port}, registry)", {
        peer: name,
        host: spec.host,
        port: spec.port,
      });
      this.#send(spec, MessageType.Hello);
    }
  }

  /** Health views of the live peers, by name. */
  liveViews(): Record<string, HealthView> {
    const out: Record<string, HealthView> = {};
    for (const [name, peer] of this.peers) if (peer.live) out[name] = peer.view;
    return out;
  }

  /** Whether any peer has told us its register since we started. */
  heardFromAny(): boolean {
    for (const peer of this.peers.values()) if (peer.register !== null) return true;
    return false;
  }

  #tick(): void {
    const now = Date.now();
    for (const [name, peer] of this.peers) {
      if (peer.live && peer.lastSeen !== null && now - peer.lastSeen > this.options.peerTimeoutMs) {
        peer.live = false;
        log.warn("peer {peer} is down: not heard from for {ms}ms", {
          peer: name,
          ms: now - peer.lastSeen,
        });
        this.host.onLiveness(name, false);
      }
    }
    this.#sendAll(MessageType.State);
  }

  #drop(reason: DropReason, detail: string): void {
    this.counters.dropped[reason] = (this.counters.dropped[reason] ?? 0) + 1;
    log.debug("dropped a peer datagram ({reason}): {detail}", { reason, detail });
  }

  async #receive(data: Uint8Array): Promise<void> {
    let decoded;
    try {
      decoded = await decodeMessage(data, this.options.keys);
    } catch (error) {
      if (error instanceof DecodeError) return this.#drop(error.reason, error.message);
      return this.#drop("malformed", String(error));
    }
    const { message, envelope } = decoded;
    if (message.from === this.options.self) {
      return this.#drop("self", "a datagram with our own name");
    }
    const peer = this.peers.get(message.from);
    if (!peer) return this.#drop("unknown_peer", message.from);
    if (message.register.cluster !== this.options.cluster) {
      return this.#drop(
        "wrong_cluster",
        `${message.from} is in cluster "${message.register.cluster}"`,
      );
    }
    const replay = checkReplay(peer.replay, {
      boot: message.boot,
      bootId: envelope.bootId,
      seq: envelope.seq,
    });
    if ("drop" in replay) return this.#drop(replay.drop, `${message.from} seq ${envelope.seq}`);
    peer.replay = replay.state;
    this.counters.received++;
    const now = Date.now();
    if (peer.boot !== null && message.boot > peer.boot) {
      log.info("peer {peer} restarted", { peer: message.from });
    }
    peer.boot = message.boot;
    peer.lastSeen = now;
    peer.view = message.view;
    peer.ready = message.ready;
    peer.api = message.api ?? null;
    peer.register = message.register;
    if (!peer.live) {
      peer.live = true;
      log.info("peer {peer} is up (epoch {epoch}, active {active})", {
        peer: message.from,
        epoch: message.register.epoch,
        active: message.register.active,
      });
      this.host.onLiveness(message.from, true);
    }
    this.host.onMessage(message);
    // A peer that is behind, or just started, gets our state at once.
    const ours = this.host.snapshot().register;
    if (message.type === MessageType.Hello || compareRegisters(ours, message.register) > 0) {
      this.#send(peer.spec, MessageType.Reply);
    }
  }

  #sendAll(type: MessageType): void {
    for (const peer of this.peers.values()) this.#send(peer.spec, type);
  }

  #send(to: PeerSpec, type: MessageType): void {
    const socket = this.#socket;
    if (!socket) return;
    const snap = this.host.snapshot();
    const message: PeerMessage = {
      type,
      from: this.options.self,
      boot: this.boot,
      ...snap,
      ...(this.options.api ? { api: this.options.api } : {}),
    };
    encodeMessage(message, { bootId: this.bootId, seq: ++this.#seq }, this.options.keys).then(
      (data) => {
        if (this.#socket !== socket) return;
        socket.send(data, to);
        this.counters.sent++;
      },
      (error) => log.error("cannot encode a peer message: {error}", { error: String(error) }),
    );
  }
}
