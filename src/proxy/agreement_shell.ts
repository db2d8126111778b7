import { getLogger } from "@logtape/logtape";
import {
  type AgreementConfig,
  type AgreementEffect,
  type AgreementEvent,
  type AgreementState,
  type Clock,
  currentRegister,
  type Route,
  startAgreement,
  step,
} from "../core/agreement.ts";
import { alignedDelay } from "../core/aligned_delay.ts";
import type { HealthView } from "../core/health_view.ts";
import type { Register } from "../core/register.ts";
import type { PeerMessage } from "../peers/codec.ts";
import { type SavedState, writeStateFile } from "../peers/state_file.ts";
import type { PeerTransport } from "../peers/transport.ts";

const log = getLogger(["galerad", "agreement"]);

/** What the shell asks of the proxy it serves. */
export interface ShellHost {
  /** Where new sessions go now. */
  route(route: Route): void;
  /** Close every session on `node`; call `severed(node)` once none is left. */
  sever(node: string, reason: string): void;
  /** A register change worth an event on the dashboard. */
  changed?(register: Register, previous: Register): void;
}

export interface ShellOptions {
  config: AgreementConfig;
  /** How often the voters are asked again (and the lease checked). */
  tickMs: number;
  stateFile?: string;
  saved?: SavedState;
  transport: PeerTransport | null;
  /** This proxy's API URL, told to peers for their springboards. */
  api?: string;
}

/** Monotonic for decisions, wall only for display. */
export function clock(): Clock {
  return { mono: performance.now(), wall: Date.now() };
}

/**
 * The thin shell around the pure agreement core: it feeds events in (ticks, datagrams, health
 * views, sever confirmations, operator requests) and carries the effects out, in order: a
 * persist is on disk before the sends after it, a sever goes to the data plane, a route to the
 * client path.
 */
export class AgreementShell {
  state: AgreementState;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #wake: ReturnType<typeof setTimeout> | undefined;
  #lastRegister: Register;

  constructor(readonly options: ShellOptions, readonly host: ShellHost) {
    const bytes = crypto.getRandomValues(new Uint8Array(6));
    const incarnation = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    this.state = startAgreement(options.config, {
      incarnation,
      now: clock(),
      saved: options.saved,
    });
    this.#lastRegister = currentRegister(this.state, clock());
  }

  start(): void {
    this.#nextTick();
    this.feed({ type: "tick" });
  }

  /**
   * Ticks on the wall clock's multiples of the tick: proxies whose clocks agree send their
   * requests in the same moment, so each wakes once for a period's requests and answers rather
   * than once for each, and a wake-up costs more than the datagram it reads
   * (docs/BENCHMARKS.md, "Notes: gossip at scale").
   */
  #nextTick(): void {
    this.#timer = setTimeout(() => {
      this.#nextTick();
      this.feed({ type: "tick" });
    }, alignedDelay(Date.now(), this.options.tickMs, this.options.tickMs / 4));
  }

  stop(): void {
    clearTimeout(this.#timer);
    clearTimeout(this.#wake);
  }

  get register(): Register {
    return currentRegister(this.state, clock());
  }

  feed(event: AgreementEvent): void {
    const { state, effects } = step(this.state, event, clock());
    this.state = state;
    for (const effect of effects) this.#apply(effect);
    const register = this.register;
    if (
      register !== this.#lastRegister &&
      JSON.stringify(register) !== JSON.stringify(this.#lastRegister)
    ) {
      const previous = this.#lastRegister;
      this.#lastRegister = register;
      this.host.changed?.(register, previous);
    }
  }

  message(message: PeerMessage): void {
    this.feed({ type: "message", message });
  }

  view(view: HealthView): void {
    this.feed({ type: "view", view });
  }

  severed(node: string): void {
    this.feed({ type: "severed", node });
  }

  #apply(effect: AgreementEffect): void {
    switch (effect.type) {
      case "send": {
        const api = this.options.api;
        this.options.transport?.send(api ? { ...effect.message, api } : effect.message);
        return;
      }
      case "persist": {
        const file = this.options.stateFile;
        if (!file) return;
        try {
          writeStateFile(file, { register: effect.register, epochSeen: effect.epochSeen });
        } catch (error) {
          // The incarnation in every register keeps a later life from reusing this epoch with
          // another node even when the file could not be written.
          log.error("cannot persist the register to {file}: {error}", {
            file,
            error: String(error),
          });
        }
        return;
      }
      case "sever":
        return this.host.sever(effect.node, effect.reason);
      case "route":
        return this.host.route(effect.route);
      case "drop":
        return this.options.transport?.dropped(effect.reason);
      case "wake":
        if (this.#wake !== undefined) return;
        this.#wake = setTimeout(() => {
          this.#wake = undefined;
          this.feed({ type: "tick" });
        }, effect.afterMs);
        return;
      case "log":
        if (effect.level === "error") log.error("{message}", { message: effect.message });
        else if (effect.level === "warn") log.warn("{message}", { message: effect.message });
        else log.info("{message}", { message: effect.message });
        return;
    }
  }
}
