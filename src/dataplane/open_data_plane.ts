/**
 * The one choice of plane. Epoll threads where libc loads (Linux with glibc, under Bun or
 * Deno): the cheapest per packet, and the only plane with more than one thread. The runtime's
 * sockets on the main thread otherwise, or when asked for (`--data-plane sockets`).
 */
import { loadLibc } from "#thread";
import { getLogger } from "@logtape/logtape";
import type { HostPort } from "../core/address.ts";
import type { ListenOptions, TcpListener } from "../runtime/types.ts";
import { EpollPlane, MissingThreadModule } from "./epoll_plane.ts";
import { localPlane } from "./local_plane.ts";
import type { ClientConn, DataPlane, DataPlaneKind, ThreadGrowth } from "./plane.ts";

const log = getLogger(["galerad", "proxy"]);

/**
 * The data plane for `threads` threads of `kind`; which one runs is settled at `listen` (libc
 * loads asynchronously). With `growth`, epoll threads are added while the running ones are in
 * demand.
 */
export function openDataPlane(
  threads: number,
  kind: DataPlaneKind = "auto",
  growth?: ThreadGrowth,
): DataPlane {
  return new ChosenPlane(threads, kind, growth);
}

class ChosenPlane implements DataPlane {
  #chosen: DataPlane | null = null;

  constructor(
    readonly wantedThreads: number,
    readonly wanted: DataPlaneKind,
    readonly growth?: ThreadGrowth,
  ) {}

  get threads(): number {
    return this.#chosen?.threads ?? this.wantedThreads;
  }

  get kind(): "epoll" | "sockets" {
    return this.#chosen?.kind ?? "sockets";
  }

  async listen(
    address: HostPort,
    options: ListenOptions,
    onConnection: (conn: ClientConn) => void,
  ): Promise<TcpListener> {
    this.#chosen = await this.#choose();
    try {
      return await this.#chosen.listen(address, options, onConnection);
    } catch (error) {
      if (!(error instanceof MissingThreadModule)) throw error;
      // Still a proxy: a hand-made build should not stop the database tier.
      log.warn(
        "--threads {threads}: this build lacks the data-plane thread module (build with " +
          "compile.sh); sessions run on the main thread",
        { threads: this.wantedThreads, reason: error.message },
      );
      this.#chosen = localPlane;
      return await localPlane.listen(address, options, onConnection);
    }
  }

  async #choose(): Promise<DataPlane> {
    const libc = this.wanted === "sockets" ? null : await loadLibc();
    if (libc) return new EpollPlane(this.wantedThreads, libc, this.growth);
    if (this.wanted === "epoll") {
      log.warn(
        "--data-plane epoll: this runtime or system cannot load libc's socket calls (Linux " +
          "with glibc under Bun or Deno is needed); using the runtime's sockets",
      );
    }
    if (this.wantedThreads > 1) {
      log.warn(
        "--threads {threads}: the runtime's sockets run on the main thread only; more threads " +
          "need the epoll data plane",
        { threads: this.wantedThreads },
      );
    }
    return localPlane;
  }
}
