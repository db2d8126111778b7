import { getLogger } from "@logtape/logtape";
import type { HostPort } from "../core/address.ts";
import {
  chooseReader,
  type ReaderCandidate,
  type ReaderChoice,
  type ReaderFallback,
  severReader,
} from "../core/reader_choice.ts";
import { type Histogram, observe } from "../core/histogram.ts";
import type { ClientConn, DataPlane } from "../dataplane/plane.ts";
import type { TcpListener } from "../runtime/types.ts";
import { carry, type ClientRouting, connectBackend, endBooks, refuse } from "./client_path.ts";
import type { BackendRuntime } from "./proxy.ts";
import { dialRefusal } from "./dial_failure.ts";
import { Session, type SessionHome } from "./session.ts";
import type { Refusal, RefusalReason } from "./refusal.ts";

const log = getLogger(["galerad", "proxy", "reader"]);

/** What the reader port needs of the proxy. */
export interface ReaderHost {
  readonly options: ClientRouting["options"];
  readonly backends: Map<string, BackendRuntime>;
  /** The group's active node (its register), which readers avoid; never a local belief only. */
  readonly groupActive: string | null;
  /** Why no session may start now (shutdown, traffic disabled), or null. */
  closedReason(): Refusal | null;
  readonly histograms: { connect(name: string): Histogram };
}

export interface ReaderCounters {
  accepted: number;
  refused: Partial<Record<RefusalReason, number>>;
  severed: number;
  connectFailures: number;
  bytesUp: number;
  bytesDown: number;
}

/**
 * The reader port: each new client goes to a healthy node that is not the active one, the one
 * with the fewest reader sessions (core/reader_choice.ts). Its sessions are kept apart from the
 * writer's, so nothing here touches the writer's path or its agreement.
 */
export class ReaderPort {
  readonly counters: ReaderCounters = {
    accepted: 0,
    refused: {},
    severed: 0,
    connectFailures: 0,
    bytesUp: 0,
    bytesDown: 0,
  };
  /** Reader sessions by backend name. */
  readonly sessions = new Map<string, Set<Session>>();
  #listener: TcpListener | null = null;
  #drained = new Set<() => void>();

  constructor(
    readonly host: ReaderHost,
    readonly listen: HostPort,
    public fallback: ReaderFallback,
  ) {}

  get port(): number {
    return this.#listener?.port ?? 0;
  }

  get sessionCount(): number {
    let n = 0;
    for (const set of this.sessions.values()) n += set.size;
    return n;
  }

  sessionsOn(name: string): number {
    return this.sessions.get(name)?.size ?? 0;
  }

  async start(plane: DataPlane): Promise<void> {
    this.#listener = await plane.listen(
      this.listen,
      { keepAliveMs: this.host.options.keepAliveMs },
      (conn) => void this.#accept(conn),
    );
    log.info("listening for readers on {host}:{port} (fallback {fallback})", {
      host: this.listen.host,
      port: this.port,
      fallback: this.fallback,
    });
  }

  /** Where a reader would go now: for `/ready?port=reader` and each new client. */
  choice(): ReaderChoice {
    const closed = this.host.closedReason();
    if (closed) return { node: null, reason: "no_reader", message: closed.message };
    return chooseReader(this.#candidates(), this.host.groupActive, this.fallback);
  }

  /** Health, drains, the register or the backend list changed: sever what may no longer read. */
  changed(): void {
    const closed = this.host.closedReason();
    const byName = new Map(this.#candidates().map((c) => [c.name, c]));
    for (const [name, set] of this.sessions) {
      if (set.size === 0) continue;
      const why = closed?.message ??
        severReader(byName.get(name), this.host.groupActive, this.fallback);
      if (why === null) continue;
      for (const s of set) s.close();
      this.counters.severed += set.size;
      log.warn("severed {count} reader sessions on {backend}: {why}", {
        count: set.size,
        backend: name,
        why,
      });
    }
  }

  /** Stops accepting; resolves when the last reader session ended or at `timeoutMs`. */
  async close(timeoutMs: number): Promise<void> {
    await this.#listener?.close();
    if (this.sessionCount > 0) {
      await new Promise<void>((resolve) => {
        const done = () => (clearTimeout(timer), this.#drained.delete(done), resolve());
        const timer = setTimeout(done, timeoutMs);
        this.#drained.add(done);
      });
    }
    for (const set of this.sessions.values()) for (const s of set) s.close();
  }

  #candidates(): ReaderCandidate[] {
    return [...this.host.backends.values()].map((b) => ({
      name: b.spec.name,
      healthy: b.health.status === "healthy",
      drained: b.maintenance,
      sessions: this.sessionsOn(b.spec.name),
    }));
  }

  async #accept(conn: ClientConn): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const choice = this.choice();
      if (choice.node === null) {
        const closed = this.host.closedReason();
        return refuse(this, conn, closed ?? { reason: choice.reason, message: choice.message });
      }
      const backend = this.host.backends.get(choice.node)!;
      const session = new Session(conn, choice.node, this.#home);
      const set = this.sessions.get(choice.node) ?? new Set();
      this.sessions.set(choice.node, set);
      set.add(session);
      const dialStarted = performance.now();
      try {
        await connectBackend(this.host.options, conn, backend.spec, session);
      } catch (error) {
        this.#release(choice.node, session);
        if (session.closed) continue; // severed before a byte passed: choose again
        this.counters.connectFailures++;
        return refuse(this, conn, dialRefusal(choice.node, "reader", error));
      }
      if (session.closed) return; // severed as it connected: ended as any severed session
      observe(this.host.histograms.connect(choice.node), (performance.now() - dialStarted) / 1000);
      carry(session, this.counters);
      return;
    }
    refuse(this, conn, {
      reason: "reader_changed",
      message: "reader node changed while connecting; try again",
    });
  }

  /** Where every reader session is kept: told when one ended. */
  readonly #home: SessionHome = {
    ended: (session) => (endBooks(this.counters, session), this.#release(session.backend, session)),
  };

  #release(name: string, session: Session): void {
    this.sessions.get(name)?.delete(session);
    if (this.sessionCount === 0) { for (const done of [...this.#drained]) done(); }
  }
}
