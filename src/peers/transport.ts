import { getLogger } from "@logtape/logtape";
import { bindUdp } from "#runtime";
import { type HostPort, parseIpv4 } from "../core/address.ts";
import type { Libc } from "../runtime/libc.ts";
import type { UdpSocket } from "../runtime/types.ts";
import {
  decodeDatagram,
  DecodeError,
  decodeMessage,
  type DropReason,
  encodeMessage,
  encodeSame,
  type PeerMessage,
  type SameNews,
} from "./codec.ts";
import { incoming, incomingSame, NEW_LINK, type NewsLink, outgoing } from "./compact_news.ts";
import type { KeyRing } from "./keyring.ts";
import { checkReplay, type ReplayState } from "./replay.ts";
import { type Bucket, SHARED_BUDGET, spend } from "./rate_limit.ts";
import { type FloodGuard, floodGuard, refused, tick } from "./flood_guard.ts";
import { KernelSourceFilter } from "./kernel_filter.ts";
import type { FilterSource } from "./source_filter.ts";

const log = getLogger(["galerad", "peers"]);

/** Counters for the API and metrics, in total and per party. */
export interface TransportCounters {
  sent: number;
  received: number;
  /** UDP payload bytes of the datagrams sent and accepted: the tier's gossip bandwidth. */
  bytesSent: number;
  bytesReceived: number;
  sendFailures: number;
  /** News sent and accepted as "same" (compact_news.ts), counted in sent and received too. */
  sameSent: number;
  sameReceived: number;
  dropped: Partial<Record<DropReason, number>>;
}

/** What the transport knows of one party it talks to. */
export interface PartyLink {
  name: string;
  address: HostPort;
  sent: number;
  sendFailures: number;
  received: number;
  lastError: string | null;
  replay?: ReplayState;
  news: NewsLink;
}

export interface TransportOptions {
  self: string;
  listen: HostPort;
  keys: KeyRing;
  /** false: neither send nor read "same" (how releases before compact news behave). */
  compactNews?: boolean;
}

/**
 * The peers' UDP wire: signs and sends agreement messages, and receives them through a chain of
 * filters, cheapest first: the source address must be a configured party's (no cryptography is
 * spent on strangers), then the codec (bounds, signature), then the name must match that source,
 * the destination must be us, and the datagram must not be a replay. Whatever fails is counted
 * under its reason and dropped; nothing thrown reaches the caller. Where it can, the first
 * filter runs in the kernel (kernel_filter.ts): a stranger's datagram never reaches the
 * process, and under a flood from other ports of a party's host neither does that.
 */
export class PeerTransport {
  readonly #counters: TransportCounters = {
    sent: 0,
    received: 0,
    bytesSent: 0,
    bytesReceived: 0,
    sendFailures: 0,
    sameSent: 0,
    sameReceived: 0,
    dropped: {},
  };
  readonly parties = new Map<string, PartyLink>();
  readonly bootId = crypto.getRandomValues(new Uint8Array(8));
  #seq = 0;
  #socket: UdpSocket | null = null;
  /** Source host → party names sending from it (several proxies may share a host). */
  #sources = new Map<string, Set<string>>();
  /** Every party's exact host:port, for the per-source budgets. */
  #partyAddresses = new Set<string>();
  #buckets = new Map<string, Bucket>();
  #kernel: KernelSourceFilter | null = null;
  #guard: FloodGuard = floodGuard(0, 0);
  #guardTimer: ReturnType<typeof setInterval> | null = null;
  #addresses: ReadonlyMap<string, HostPort> = new Map();

  constructor(
    readonly options: TransportOptions,
    readonly onMessage: (message: PeerMessage) => void,
  ) {}

  get port(): number {
    return this.#socket?.port ?? this.options.listen.port;
  }

  /** The counters, with what the kernel dropped for the socket read as of now. */
  get counters(): TransportCounters {
    if (this.#kernel) this.#counters.dropped.kernel = this.#kernel.drops();
    return this.#counters;
  }

  /** Whether the kernel filters sources, and how strictly. */
  get kernelFilter(): "off" | "hosts" | "addresses" {
    return !this.#kernel ? "off" : this.#guard.strict ? "addresses" : "hosts";
  }

  /** Binds the peer port; with `libc`, the kernel filters sources (IPv4 only). */
  async start(libc: Libc | null = null): Promise<void> {
    this.#socket = await bindUdp(
      this.options.listen,
      (data, from) => void this.#receive(data, from),
    );
    if (libc && parseIpv4(this.options.listen.host)) {
      this.#kernel = KernelSourceFilter.find(libc, this.#socket.port);
      if (!this.#kernel) log.warn("peer port: cannot find its socket; no kernel source filter");
    }
    this.#guard = floodGuard(performance.now(), this.#kernel?.drops() ?? 0);
    this.#filterInKernel();
    if (this.#kernel) {
      this.#guardTimer = setInterval(() => this.#tickGuard(), 1000);
      (this.#guardTimer as { unref?: () => void }).unref?.();
    }
  }

  stop(): void {
    if (this.#guardTimer) clearInterval(this.#guardTimer);
    this.#guardTimer = null;
    this.#kernel = null;
    this.#socket?.close();
    this.#socket = null;
  }

  /** The parties and where they are; names not listed are forgotten. */
  setParties(addresses: ReadonlyMap<string, HostPort>): void {
    for (const name of [...this.parties.keys()]) {
      if (!addresses.has(name)) this.parties.delete(name);
    }
    for (const [name, address] of addresses) {
      const known = this.parties.get(name);
      if (known) known.address = address;
      else {
        this.parties.set(name, {
          name,
          address,
          sent: 0,
          sendFailures: 0,
          received: 0,
          lastError: null,
          news: NEW_LINK,
        });
      }
    }
    this.#addresses = new Map(addresses);
    this.#filterInKernel();
    this.#sources = new Map();
    this.#partyAddresses = new Set(
      [...addresses.values()].map((a) => `${normalHost(a.host)}:${a.port}`),
    );
    for (const key of [...this.#buckets.keys()]) {
      if (key !== SHARED_BUDGET && !this.#partyAddresses.has(key)) this.#buckets.delete(key);
    }
    for (const party of this.parties.values()) {
      const host = normalHost(party.address.host);
      this.#sources.set(host, new Set([...(this.#sources.get(host) ?? []), party.name]));
    }
  }

  /**
   * Signs and sends one message to the party it names: news it holds already as "same"
   * (compact_news.ts), unless `compactNews` is off.
   */
  send(message: PeerMessage): void {
    const socket = this.#socket;
    const party = this.parties.get(message.to);
    if (!socket || !party) return;
    if (this.options.compactNews === false) return this.#encode(socket, party, message);
    const out = outgoing(party.news, message, performance.now());
    party.news = out.link;
    if (out.send === "same") return this.#encode(socket, party, out.same);
    this.#encode(socket, party, out.message);
    if (out.probe) this.#encode(socket, party, out.probe);
  }

  #encode(socket: UdpSocket, party: PartyLink, message: PeerMessage | SameNews): void {
    const envelope = { bootId: this.bootId, seq: ++this.#seq };
    const encoded = message.kind === "same"
      ? encodeSame(message, envelope, this.options.keys)
      : encodeMessage(message, envelope, this.options.keys);
    encoded.then(
      (data) => {
        if (this.#socket !== socket) return;
        if (message.kind === "same") this.#counters.sameSent++;
        this.#sendTo(socket, party, data, true);
      },
      (error) => log.error("cannot encode a peer message: {error}", { error: String(error) }),
    );
  }

  /**
   * Tells the kernel which sources pass: every port of a party's host, or under a flood only
   * parties' own addresses. Off when a party is not an IPv4 address (a name, IPv6).
   */
  #filterInKernel(): void {
    const kernel = this.#kernel;
    if (!kernel) return;
    const sources: FilterSource[] = [];
    for (const address of this.#addresses.values()) {
      const ip = parseIpv4(normalHost(address.host));
      if (!ip) {
        log.warn("peer {host} is not an IPv4 address: no kernel source filter", {
          host: address.host,
        });
        this.#kernel = null;
        return kernel.remove();
      }
      const value = ((ip[0] << 24) | (ip[1] << 16) | (ip[2] << 8) | ip[3]) >>> 0;
      const port = this.#guard.strict ? address.port : null;
      if (!sources.some((s) => s.ip === value && s.port === port)) {
        sources.push({ ip: value, port });
      }
    }
    const applied = kernel.apply(sources);
    if (!applied.ok) {
      log.warn("peer port: the kernel refused its source filter (errno {errno})", applied);
      this.#kernel = null;
    }
  }

  #tickGuard(): void {
    if (!this.#kernel) return;
    const next = tick(this.#guard, performance.now(), this.#kernel.drops());
    const loosened = this.#guard.strict && !next.strict;
    this.#guard = next;
    if (!loosened) return;
    log.info("peer port: the flood has stopped; every port of a party's host passes again");
    this.#filterInKernel();
  }

  #sendTo(socket: UdpSocket, party: PartyLink, data: Uint8Array, retry: boolean): void {
    socket.send(data, party.address, (error) => {
      if (!error) {
        party.sent++;
        this.#counters.sent++;
        this.#counters.bytesSent += data.length;
        return;
      }
      // An ICMP error from another party's closed port is reported on the next send, whoever it
      // goes to, and that datagram was not sent: send it again once, so a dead party never
      // costs a live one a datagram.
      if (retry && this.#socket === socket) return this.#sendTo(socket, party, data, false);
      party.sendFailures++;
      this.#counters.sendFailures++;
      const text = (error as { code?: string }).code ?? error.message;
      if (party.lastError !== text) {
        log.warn("cannot send to peer {peer} at {host}:{port}: {error}", {
          peer: party.name,
          host: party.address.host,
          port: party.address.port,
          error: text,
        });
      }
      party.lastError = text;
    });
  }

  #drop(reason: DropReason, detail: string): void {
    this.#counters.dropped[reason] = (this.#counters.dropped[reason] ?? 0) + 1;
    log.debug("dropped a peer datagram ({reason}): {detail}", { reason, detail });
  }

  /** Counts a drop the agreement core decided (voter set, cluster, destination). */
  dropped(reason: DropReason): void {
    this.#drop(reason, "refused by the agreement");
  }

  async #receive(data: Uint8Array, from: HostPort): Promise<void> {
    const names = this.#sources.get(normalHost(from.host));
    if (!names) return this.#drop("unknown_source", `${from.host}:${from.port}`);
    // Before any cryptography: a party's own address has a budget of its own, so a flood from
    // elsewhere (another port of a known host) cannot starve it; everything else shares one.
    const key = `${normalHost(from.host)}:${from.port}`;
    const own = this.#partyAddresses.has(key);
    const allowed = spend(
      this.#buckets,
      own ? key : SHARED_BUDGET,
      performance.now(),
      own ? PARTY_RATE : OTHER_RATE,
    );
    if (!allowed) {
      if (!own && this.#kernel && !this.#guard.strict) {
        this.#guard = refused(this.#guard, performance.now());
        if (this.#guard.strict) {
          log.warn(
            "peer port flooded from {host}:{port}, not a party's address: until it stops, the kernel passes only parties' own addresses",
            { host: from.host, port: from.port },
          );
          this.#filterInKernel();
        }
      }
      return this.#drop("rate_limited", key);
    }
    let decoded;
    try {
      // Without compact news, "same" is dropped as bad_type, as decodeMessage does for agents.
      const decode = this.options.compactNews === false ? decodeMessage : decodeDatagram;
      decoded = await decode(data, this.options.keys);
    } catch (error) {
      if (error instanceof DecodeError) return this.#drop(error.reason, error.message);
      return this.#drop("malformed", String(error));
    }
    const { message, envelope } = decoded;
    if (message.from === this.options.self) return this.#drop("self", "our own name");
    const party = this.parties.get(message.from);
    if (!party) return this.#drop("unknown_peer", message.from);
    if (!names.has(message.from)) {
      return this.#drop("unknown_source", `${message.from} from ${from.host}, not its address`);
    }
    if (message.to !== this.options.self) {
      return this.#drop("misdirected", `${message.from} sent it to ${message.to}`);
    }
    const replay = checkReplay(party.replay, envelope);
    if ("drop" in replay) return this.#drop(replay.drop, `${message.from} seq ${envelope.seq}`);
    party.replay = replay.state;
    let news: PeerMessage | null;
    if (message.kind === "same") {
      const step = incomingSame(party.news, message);
      party.news = step.link;
      news = step.message;
      // Not the news we hold (a whole one was lost, or we restarted): our `heard` says so.
      if (!news) return this.#drop("stale_news", `${message.from} same ${message.same}`);
      this.#counters.sameReceived++;
    } else if (this.options.compactNews === false) news = message;
    else {
      const step = incoming(party.news, message);
      party.news = step.link;
      news = step.message;
    }
    party.received++;
    this.#counters.received++;
    this.#counters.bytesReceived += data.length;
    this.onMessage(news);
  }
}

/**
 * Datagrams per second from one party's own address: honest traffic is a few dozen (gossip,
 * requests, replies), so a flood is cut long before its HMACs cost anything.
 */
const PARTY_RATE = { perSecond: 500, burst: 500 };
/** Everything else from configured hosts (other ports, spoofed or not) shares this. */
const OTHER_RATE = { perSecond: 2000, burst: 2000 };

/** Loopback spellings and IPv4-mapped IPv6 compare as one host. */
function normalHost(host: string): string {
  const h = host.toLowerCase().replace(/^::ffff:/, "");
  return h === "localhost" || h === "::1" ? "127.0.0.1" : h;
}
