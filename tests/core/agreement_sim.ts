/**
 * A deterministic simulation of a galerad tier: proxies running the pure agreement core, agents
 * running the witness core, Galera nodes that go up and down, and a network with a state per
 * directed link (up or down, loss, duplication, delay and so reordering). Everything is driven
 * by one seeded random source and one event queue, so a seed replays exactly. The safety
 * property is checked after every event: no two proxies hold or accept sessions on two
 * different nodes at once.
 */
import {
  type AgreementConfig,
  type AgreementEffect,
  type AgreementEvent,
  type AgreementState,
  type AgreementTimers,
  type Clock,
  startAgreement,
  step,
} from "../../src/core/agreement.ts";
import type { AgreementMessage } from "../../src/core/agreement_message.ts";
import type { HealthView } from "../../src/core/health_view.ts";
import type { Register } from "../../src/core/register.ts";
import type { QuorumMode } from "../../src/core/voter_set.ts";
import {
  startWitness,
  type WitnessEffect,
  type WitnessState,
  witnessStep,
} from "../../src/core/witness.ts";

/** mulberry32: small, fast, and the same on every runtime. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const SIM_TIMERS: AgreementTimers = {
  leaseMs: 2000,
  marginMs: 200,
  guardMs: 300,
  settleMs: 2000,
  startupHoldMs: 2000,
};

export interface Link {
  up: boolean;
  loss: number;
  duplicate: number;
  minDelay: number;
  maxDelay: number;
}

interface ProxyBox {
  name: string;
  config: AgreementConfig;
  alive: boolean;
  state: AgreementState | null;
  /** Monotonic clock: rate and offset differ per proxy and per life. */
  rate: number;
  offset: number;
  wallOffset: number;
  /** The node this proxy's clients have sessions on (what the invariant watches). */
  sessions: string | null;
  route: string | null;
  saved: { register: Register; epochSeen: number } | null;
  keepStateFile: boolean;
  view: HealthView;
  lives: number;
  /** A wake effect is pending (the shell keeps at most one timer). */
  wake?: boolean;
}

interface AgentBox {
  name: string;
  alive: boolean;
  state: WitnessState | null;
  rate: number;
  offset: number;
  saved: Register | null;
  view: HealthView;
  lives: number;
}

export interface SimOptions {
  seed: number;
  proxies: string[];
  mode: QuorumMode;
  nodes?: string[];
  /** With mode "proxies": the proxies that vote (`--voters`); all of them when absent. */
  voters?: string[];
  /** Proxies configured with another peer list: name → the peers (self included) it lists. */
  misconfigured?: Record<string, string[]>;
  gossipMs?: number;
  probeMs?: number;
  /** Longest time the data plane takes to confirm a sever. */
  severMaxMs?: number;
  timers?: AgreementTimers;
}

export interface Violation {
  at: number;
  what: string;
}

/** The simulated world; tests script it with `at()` or let `chaos()` pick faults. */
export class Sim {
  t = 0;
  readonly rng: () => number;
  readonly nodes: Record<string, { up: boolean; index: number }> = {};
  readonly links = new Map<string, Link>();
  readonly proxies: Record<string, ProxyBox> = {};
  readonly agents: Record<string, AgentBox> = {};
  readonly timeline: string[] = [];
  readonly violations: Violation[] = [];
  /** Moments (ms) during which two proxies served two different nodes, in availability mode. */
  splitMs = 0;
  events = 0;
  /** Messages sent so far, by kind (lost ones too). */
  readonly sent: Record<string, number> = {};
  #queue: { at: number; seq: number; run: () => void }[] = [];
  #seq = 0;
  readonly gossipMs: number;
  readonly probeMs: number;
  readonly severMaxMs: number;
  readonly timers: AgreementTimers;
  #lastSplit: number | null = null;

  constructor(readonly options: SimOptions) {
    this.rng = random(options.seed);
    this.gossipMs = options.gossipMs ?? 200;
    this.probeMs = options.probeMs ?? 250;
    this.severMaxMs = options.severMaxMs ?? 100;
    this.timers = options.timers ?? SIM_TIMERS;
    const nodes = options.nodes ?? ["db0", "db1", "db2"];
    nodes.forEach((n, i) => (this.nodes[n] = { up: true, index: i }));
    const all = [...options.proxies, ...Object.keys(options.misconfigured ?? {})];
    for (const name of all) {
      const listed = options.misconfigured?.[name] ?? options.proxies;
      const voters = options.mode === "proxies"
        ? [...(options.voters ?? listed)].sort()
        : options.mode === "agents"
        ? [...nodes].sort()
        : [name];
      const peers = listed.filter((p) => p !== name);
      this.proxies[name] = {
        name,
        config: {
          self: name,
          cluster: "lab",
          mode: options.mode,
          voters,
          peers,
          backends: nodes,
          targets: Object.fromEntries(nodes.map((n) => [n, `http://${n}:9200`])),
          timers: this.timers,
        },
        alive: false,
        state: null,
        rate: 1,
        offset: 0,
        wallOffset: 0,
        sessions: null,
        route: null,
        saved: null,
        keepStateFile: true,
        view: {},
        lives: 0,
      };
    }
    if (options.mode === "agents") {
      for (const n of nodes) {
        this.agents[n] = {
          name: n,
          alive: false,
          state: null,
          rate: 1,
          offset: 0,
          saved: null,
          view: {},
          lives: 0,
        };
      }
    }
  }

  // ---- scheduling ----

  at(ms: number, label: string, run: () => void): void {
    this.#push(ms, () => {
      this.log(label);
      run();
    });
  }

  #push(at: number, run: () => void): void {
    const item = { at, seq: this.#seq++, run };
    const q = this.#queue;
    // Binary insertion keeps the queue ordered by (at, seq).
    let lo = 0;
    let hi = q.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (q[mid].at < at || (q[mid].at === at && q[mid].seq < item.seq)) lo = mid + 1;
      else hi = mid;
    }
    q.splice(lo, 0, item);
  }

  /** Runs every event up to `until` (ms), checking the invariant after each. */
  run(until: number): void {
    while (this.#queue.length > 0 && this.#queue[0].at <= until) {
      const item = this.#queue.shift()!;
      this.t = item.at;
      item.run();
      this.events++;
      this.#check();
    }
    this.t = until;
  }

  log(line: string): void {
    this.timeline.push(`${String(Math.round(this.t)).padStart(6)}ms ${line}`);
  }

  // ---- the world ----

  link(from: string, to: string): Link {
    const key = `${from}>${to}`;
    let link = this.links.get(key);
    if (!link) {
      link = { up: true, loss: 0, duplicate: 0, minDelay: 0.2, maxDelay: 2 };
      this.links.set(key, link);
    }
    return link;
  }

  /** Cuts or heals both directions between two parties. */
  cut(a: string, b: string, up = false): void {
    this.link(a, b).up = up;
    this.link(b, a).up = up;
  }

  heal(): void {
    for (const link of this.links.values()) {
      link.up = true;
      link.loss = 0;
      link.duplicate = 0;
      link.minDelay = 0.2;
      link.maxDelay = 2;
    }
  }

  #clock(box: { rate: number; offset: number; wallOffset?: number }): Clock {
    return { mono: box.offset + this.t * box.rate, wall: 1.8e12 + this.t + (box.wallOffset ?? 0) };
  }

  startProxy(name: string): void {
    const box = this.proxies[name];
    if (box.alive) return;
    box.alive = true;
    box.lives++;
    box.rate = 1 + (this.rng() - 0.5) * 2e-3;
    box.offset = this.rng() * 1e6;
    box.sessions = null;
    box.route = null;
    box.view = {};
    box.wake = false;
    const saved = box.keepStateFile ? box.saved ?? undefined : undefined;
    box.state = startAgreement(box.config, {
      incarnation: `${name}#${box.lives}`,
      now: this.#clock(box),
      saved,
    });
    const life = box.lives;
    const tick = () => {
      if (!box.alive || box.lives !== life) return;
      this.#proxyEvent(box, { type: "tick" });
      this.#push(this.t + this.gossipMs * (0.8 + 0.4 * this.rng()), tick);
    };
    const probe = () => {
      if (!box.alive || box.lives !== life) return;
      const view: HealthView = {};
      for (const [n, node] of Object.entries(this.nodes)) {
        const reach = this.link(name, n).up && this.link(n, name).up;
        view[n] = { healthy: node.up && reach, index: node.index };
      }
      if (JSON.stringify(view) !== JSON.stringify(box.view)) {
        box.view = view;
        this.#proxyEvent(box, { type: "view", view });
      }
      this.#push(this.t + this.probeMs * (0.8 + 0.4 * this.rng()), probe);
    };
    this.#push(this.t + this.rng() * this.gossipMs, tick);
    this.#push(this.t + this.rng() * this.probeMs, probe);
  }

  crashProxy(name: string, keepStateFile: boolean): void {
    const box = this.proxies[name];
    if (!box.alive) return;
    box.alive = false;
    box.state = null;
    box.sessions = null; // the kernel closes a dead process's sockets
    box.route = null;
    box.keepStateFile = keepStateFile;
  }

  startAgent(name: string): void {
    const box = this.agents[name];
    if (box.alive) return;
    box.alive = true;
    box.lives++;
    box.rate = 1 + (this.rng() - 0.5) * 2e-3;
    box.offset = this.rng() * 1e6;
    box.view = {};
    box.state = startWitness({ cluster: "lab", name, timers: this.timers }, {
      incarnation: `${name}#${box.lives}`,
      now: this.#clock(box),
      saved: box.saved ?? undefined,
    });
    const life = box.lives;
    const probe = () => {
      if (!box.alive || box.lives !== life) return;
      const view: HealthView = {};
      for (const [n, node] of Object.entries(this.nodes)) {
        if (!box.state || !(n in box.state.targets)) continue;
        const reach = n === name || (this.link(name, n).up && this.link(n, name).up);
        view[n] = { healthy: node.up && reach, index: node.index };
      }
      if (JSON.stringify(view) !== JSON.stringify(box.view)) {
        box.view = view;
        this.#agentEvent(box, { type: "view", view });
      }
      this.#push(this.t + this.probeMs * (0.8 + 0.4 * this.rng()), probe);
    };
    this.#push(this.t + this.rng() * this.probeMs, probe);
  }

  crashAgent(name: string): void {
    const box = this.agents[name];
    box.alive = false;
    box.state = null;
  }

  startAll(): void {
    for (const name of this.options.proxies) this.startProxy(name);
    for (const name of Object.keys(this.agents)) this.startAgent(name);
  }

  switchover(name: string, target: string): void {
    const box = this.proxies[name];
    if (box.alive) this.#proxyEvent(box, { type: "switchover", target, reason: "sim" });
  }

  // ---- plumbing ----

  #proxyEvent(box: ProxyBox, event: AgreementEvent): void {
    if (!box.state) return;
    const { state, effects } = step(box.state, event, this.#clock(box));
    box.state = state;
    for (const effect of effects) this.#proxyEffect(box, effect);
  }

  #proxyEffect(box: ProxyBox, effect: AgreementEffect): void {
    switch (effect.type) {
      case "send":
        return this.#send(effect.message);
      case "persist":
        box.saved = { register: effect.register, epochSeen: effect.epochSeen };
        return;
      case "route": {
        const node = effect.route.node;
        if (node !== null && box.sessions !== null && box.sessions !== node) {
          this.violations.push({
            at: this.t,
            what:
              `${box.name} routes to ${node} while its sessions on ${box.sessions} are not closed`,
          });
        }
        if (node !== box.route) {
          this.log(`${box.name} routes to ${node ?? "none"}: ${effect.route.reason}`);
        }
        box.route = node;
        if (node !== null) box.sessions = node;
        return;
      }
      case "sever": {
        const life = box.lives;
        const node = effect.node;
        this.log(`${box.name} severs ${node}: ${effect.reason}`);
        this.#push(this.t + this.rng() * this.severMaxMs, () => {
          if (!box.alive || box.lives !== life) return;
          if (box.sessions === node && box.route !== node) box.sessions = null;
          this.#proxyEvent(box, { type: "severed", node });
        });
        return;
      }
      case "log":
        if (effect.level !== "info") this.log(`${box.name}: ${effect.message}`);
        return;
      case "wake": {
        if (box.wake) return;
        box.wake = true;
        const life = box.lives;
        this.#push(this.t + effect.afterMs, () => {
          if (box.lives !== life) return;
          box.wake = false;
          if (box.alive) this.#proxyEvent(box, { type: "tick" });
        });
        return;
      }
      case "drop":
        return;
    }
  }

  #agentEvent(box: AgentBox, event: Parameters<typeof witnessStep>[1]): void {
    if (!box.state) return;
    const { state, effects } = witnessStep(box.state, event, this.#clock(box));
    box.state = state;
    for (const effect of effects) this.#agentEffect(box, effect);
  }

  #agentEffect(box: AgentBox, effect: WitnessEffect): void {
    if (effect.type === "send") return this.#send(effect.message);
    if (effect.type === "persist") box.saved = effect.register;
    if (effect.type === "log" && effect.level !== "info") {
      this.log(`${box.name}: ${effect.message}`);
    }
  }

  #send(message: AgreementMessage): void {
    this.sent[message.kind] = (this.sent[message.kind] ?? 0) + 1;
    const link = this.link(message.from, message.to);
    if (!link.up || this.rng() < link.loss) return;
    const copies = this.rng() < link.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = link.minDelay + this.rng() * (link.maxDelay - link.minDelay);
      this.#push(this.t + delay, () => this.#deliver(message));
    }
  }

  #deliver(message: AgreementMessage): void {
    const proxy = this.proxies[message.to];
    if (proxy?.alive) return this.#proxyEvent(proxy, { type: "message", message });
    const agent = this.agents[message.to];
    if (agent?.alive) this.#agentEvent(agent, { type: "message", message });
  }

  #check(): void {
    const serving = new Map<string, string>();
    for (const box of Object.values(this.proxies)) {
      if (!box.alive || box.sessions === null) continue;
      serving.set(box.name, box.sessions);
    }
    const distinct = new Set(serving.values());
    if (distinct.size <= 1) {
      if (this.#lastSplit !== null) this.splitMs += this.t - this.#lastSplit;
      this.#lastSplit = null;
      return;
    }
    if (this.options.mode === "none") {
      this.#lastSplit ??= this.t;
      return;
    }
    const what = [...serving].map(([p, n]) => `${p} on ${n}`).join(", ");
    if (this.violations.length === 0) {
      this.violations.push({ at: this.t, what: `two nodes served at once: ${what}` });
      this.log(`VIOLATION: ${what}`);
    }
  }

  /** Where each live proxy routes new sessions now. */
  routes(): Record<string, string | null> {
    const out: Record<string, string | null> = {};
    for (const box of Object.values(this.proxies)) if (box.alive) out[box.name] = box.route;
    return out;
  }

  /** Random faults from `from` to `to` ms: cuts (both ways or one), loss, crashes, node failures. */
  chaos(from: number, to: number): void {
    const parties = [...Object.keys(this.proxies), ...Object.keys(this.nodes)];
    const proxies = Object.keys(this.proxies);
    const nodes = Object.keys(this.nodes);
    const pick = <T>(list: T[]): T => list[Math.floor(this.rng() * list.length)];
    for (let t = from + this.rng() * 400; t < to; t += 100 + this.rng() * 700) {
      const r = this.rng();
      if (r < 0.22) {
        const a = pick(parties);
        const b = pick(parties.filter((p) => p !== a));
        const up = this.rng() < 0.4;
        this.at(t, `link ${a}<->${b} ${up ? "up" : "down"}`, () => this.cut(a, b, up));
      } else if (r < 0.36) {
        const a = pick(parties);
        const b = pick(parties.filter((p) => p !== a));
        const up = this.rng() < 0.4;
        this.at(
          t,
          `link ${a}->${b} ${up ? "up" : "down"} (one way)`,
          () => (this.link(a, b).up = up),
        );
      } else if (r < 0.48) {
        const a = pick(parties);
        const b = pick(parties.filter((p) => p !== a));
        const loss = this.rng() * 0.6;
        const duplicate = this.rng() * 0.3;
        const maxDelay = 1 + this.rng() * 300;
        this.at(
          t,
          `link ${a}->${b} loss ${loss.toFixed(2)} dup ${duplicate.toFixed(2)} delay<=${
            maxDelay.toFixed(0)
          }`,
          () => {
            Object.assign(this.link(a, b), { loss, duplicate, maxDelay });
          },
        );
      } else if (r < 0.62) {
        const n = pick(nodes);
        const up = this.rng() < 0.55;
        this.at(t, `node ${n} ${up ? "up" : "down"}`, () => {
          this.nodes[n].up = up;
          // A node that rejoins Galera may come back with another wsrep_local_index.
          if (up && this.rng() < 0.5) this.nodes[n].index = Math.floor(this.rng() * nodes.length);
        });
      } else if (r < 0.76) {
        const p = pick(proxies);
        const keep = this.rng() < 0.5;
        const back = t + 50 + this.rng() * 3000;
        this.at(
          t,
          `crash ${p} (${keep ? "keeps" : "loses"} its state file)`,
          () => this.crashProxy(p, keep),
        );
        this.at(back, `restart ${p}`, () => this.startProxy(p));
      } else if (r < 0.82 && Object.keys(this.agents).length > 0) {
        const a = pick(Object.keys(this.agents));
        this.at(t, `crash agent ${a}`, () => this.crashAgent(a));
        this.at(t + 50 + this.rng() * 3000, `restart agent ${a}`, () => this.startAgent(a));
      } else if (r < 0.9) {
        const p = pick(proxies);
        const step = (this.rng() - 0.5) * 2 * 600_000;
        this.at(t, `wall clock of ${p} steps ${Math.round(step / 1000)}s`, () => {
          this.proxies[p].wallOffset += step;
        });
      } else {
        const p = pick(proxies);
        const n = pick(nodes);
        this.at(t, `switchover on ${p} to ${n}`, () => this.switchover(p, n));
      }
    }
  }

  /** Ends every fault at `at`: links healed, everything started, every node up. */
  healAt(at: number): void {
    this.at(at, "heal: every link up, every node up, everything started", () => {
      this.heal();
      for (const n of Object.values(this.nodes)) n.up = true;
      for (const name of this.options.proxies) this.startProxy(name);
      for (const name of Object.keys(this.agents)) this.startAgent(name);
    });
  }
}
