import type { HostPort } from "../core/address.ts";

/**
 * The runtime seam. `#runtime` resolves to `bun.ts`, `deno.ts` or, under any other
 * Node-compatible runtime, `node.ts` (package.json's and deno.json's import maps); each exports
 * the functions below with these exact types, and nothing outside src/runtime/ asks which
 * runtime it is on.
 */

/** One accepted or dialled TCP connection. */
export interface TcpConn {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Writes a preamble (a PROXY protocol header) before any splice; resolves once written. */
  write(data: Uint8Array): Promise<void>;
  /** Writes a small control message (an error packet) and closes after it is flushed. */
  endWith(data: Uint8Array): void;
  /** Closes both directions at once; pending data is dropped. Idempotent. */
  destroy(): void;
  /** Resolves once the connection is fully closed, by either side. */
  readonly closed: Promise<void>;
}

/** Byte counters a splice adds to as data passes, per direction. */
export interface SpliceStats {
  /** Client to backend. */
  up: number;
  /** Backend to client. */
  down: number;
}

export interface TcpListener {
  readonly port: number;
  /** Stops accepting; established connections are not touched. */
  close(): Promise<void>;
}

export interface ConnectOptions {
  timeoutMs: number;
  /** TCP keepalive idle time; 0 disables keepalive. */
  keepAliveMs: number;
  /**
   * Connects to this target its server has not answered yet (no first byte) that the proxy
   * allows at once; more wait their turn within `timeoutMs`. 0 or absent: no limit. Planes
   * that cannot see the answer (the runtime's sockets) ignore it.
   */
  maxConnecting?: number;
}

export interface ListenOptions {
  keepAliveMs: number;
}

export interface HttpServer {
  readonly port: number;
  close(): Promise<void>;
}

export type FetchHandler = (request: Request) => Response | Promise<Response>;

/** A certificate chain and its private key, PEM text, for an HTTPS listener. */
export interface TlsFiles {
  cert: string;
  key: string;
}

/** `fetch` as the runtime gives it, optionally trusting one more CA (agents over https). */
export type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

/** A bound UDP socket. */
export interface UdpSocket {
  readonly port: number;
  /** Sends one datagram; `done` gets the error when the kernel refused it. */
  send(data: Uint8Array, to: HostPort, done?: (error: Error | null) => void): void;
  close(): void;
}

export type UdpHandler = (data: Uint8Array, from: HostPort) => void;
