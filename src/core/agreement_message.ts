import type { HealthView } from "./health_view.ts";
import type { LeaseRequest } from "./lease_voter.ts";
import type { Register } from "./register.ts";

/**
 * What one party of the agreement tells another: its state every time (anti-entropy), a lease
 * request from a holder to a voter, a voter's answer to the last request. The wire format is
 * src/peers/codec.ts; this is what the pure core sees.
 */
export interface AgreementMessage {
  /** request: asks the voter for a lease and an answer at once; reply: the answer; state: news. */
  kind: "request" | "reply" | "state";
  from: string;
  /** The party it was sent to: a datagram is only good where it was meant to go. */
  to: string;
  /** The sender's life (random, new at every start). */
  incarnation: string;
  /** The sender's voter-set digest (core/voter_set.ts). */
  digest: string;
  /** A voter's own register; a holder that votes not: the register it serves or proposes. */
  register: Register;
  /** The highest epoch the sender has seen or proposed. */
  epochSeen: number;
  view: HealthView;
  /** The node the sender may have sessions on (holders), for the API. */
  serving: string | null;
  /** kind "request": the holder's clock stamp, what it may have sessions on, the lease it asks. */
  request?: { t: number; serving: string | null; lease: number };
  /** kind "reply": the answer to the request stamped `t` of the holder's life `incarnation`. */
  grant?: {
    t: number;
    incarnation: string;
    node: string | null;
    lease: number;
    why: string;
    /** Refused only until another holder releases the old node: ask again soon. */
    wait?: boolean;
  };
  /**
   * The register the sender saw a strict majority of voters hold (majority), or else the
   * largest of the registers of a majority it heard: where voters should converge.
   */
  follow?: { register: Register; majority: boolean };
  /** To an agent: the health URLs of the backends, so it can judge them itself. */
  targets?: Record<string, string>;
}

/** The lease request a message carries, as the voter rule reads it. */
export function leaseRequestOf(
  m: AgreementMessage,
  request: NonNullable<AgreementMessage["request"]>,
): LeaseRequest {
  return {
    holder: m.from,
    incarnation: m.incarnation,
    t: request.t,
    serving: request.serving,
    lease: request.lease,
    digest: m.digest,
  };
}
