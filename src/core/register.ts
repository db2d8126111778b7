/**
 * The sticky register: which node the group routes to, decided by whom, in which life of that
 * proxy, at which epoch, replacing which node. Ordered over every field, never by wall-clock
 * time first, so merge is a total order: commutative, associative and idempotent.
 */
export interface Register {
  cluster: string;
  /** 0 until the first decision; every proposal is the largest epoch its proposer saw + 1. */
  epoch: number;
  /** Name of the proxy that proposed this change. */
  proposer: string;
  /**
   * The proposer's incarnation (random, new at every start). With it, two lives of one proxy
   * can never name different nodes under one (epoch, proposer, incarnation).
   */
  incarnation: string;
  /** The node the group routes to; null when no node is fit. */
  active: string | null;
  /** The node this register replaces: what a voter checks before accepting a failover. */
  previous: string | null;
  kind: RegisterKind;
  /** Why this change was made, for operators. */
  reason: string;
  /** Wall-clock milliseconds of the change: for display only, never for ordering first. */
  time: number;
}

/** Why a register was proposed: a voter judges each kind by its own rule. */
export type RegisterKind = "none" | "initial" | "failover" | "switchover";
export const REGISTER_KINDS: readonly RegisterKind[] = [
  "none",
  "initial",
  "failover",
  "switchover",
];

/** Epochs above this are refused everywhere, so `epoch + 1` is always a safe integer. */
export const MAX_EPOCH = 2 ** 40;

/**
 * The most a judged proposal may jump past the register it replaces, and the most one message
 * may raise what a proxy has seen. Honest proposals are the largest epoch seen + 1, so they
 * never come near it; a key holder who claims epoch 2^40 cannot use up the epoch space and
 * freeze the tier (every later proposal would be refused as too large).
 */
export const MAX_EPOCH_STEP = 1000;
/** Longest reason carried: anything accepted must fit a datagram again when passed on. */
export const MAX_REASON = 240;
/** Longest proxy, backend or cluster name. */
export const MAX_NAME = 64;

/** The register before any decision. */
export function emptyRegister(cluster: string): Register {
  return {
    cluster,
    epoch: 0,
    proposer: "",
    incarnation: "",
    active: null,
    previous: null,
    kind: "none",
    reason: "no decision yet",
    time: 0,
  };
}

function cmp<T extends string | number | null>(a: T, b: T): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  return a < b ? -1 : 1;
}

/** Orders registers by epoch, proposer, incarnation, then every other field; 0 only if equal. */
export function compareRegisters(a: Register, b: Register): number {
  if (a === b) return 0;
  return cmp(a.epoch, b.epoch) || cmp(a.proposer, b.proposer) ||
    cmp(a.incarnation, b.incarnation) || cmp(a.active, b.active) || cmp(a.previous, b.previous) ||
    cmp(a.kind, b.kind) || cmp(a.reason, b.reason) || cmp(a.time, b.time) ||
    cmp(a.cluster, b.cluster);
}

/** The larger of two registers: commutative, associative and idempotent. */
export function mergeRegisters(a: Register, b: Register): Register {
  return compareRegisters(a, b) >= 0 ? a : b;
}

/** Same register, field by field. */
export function sameRegister(a: Register, b: Register): boolean {
  return compareRegisters(a, b) === 0;
}

/**
 * Checks a register read from the wire, a state file or the API. Returns it (with a reason cut
 * to MAX_REASON) or a one-line problem naming the field and the value.
 */
export function parseRegister(input: unknown): Register | string {
  if (typeof input !== "object" || input === null) return "register is not an object";
  const r = input as Record<string, unknown>;
  const name = (field: string, empty: boolean): string | null => {
    const v = r[field];
    if (typeof v !== "string") return `${field} is ${JSON.stringify(v)}: expected a string`;
    if ((!empty && v === "") || v.length > MAX_NAME || hasControl(v)) {
      return `${field} is ${
        JSON.stringify(v.slice(0, 80))
      }: expected 1-${MAX_NAME} printable characters`;
    }
    return null;
  };
  const problem = name("cluster", false) ?? name("proposer", true) ?? name("incarnation", true);
  if (problem) return problem;
  const epoch = r.epoch;
  if (typeof epoch !== "number" || !Number.isSafeInteger(epoch) || epoch < 0 || epoch > MAX_EPOCH) {
    return `epoch is ${JSON.stringify(epoch)}: expected an integer from 0 to ${MAX_EPOCH}`;
  }
  for (const field of ["active", "previous"]) {
    if (r[field] !== null && name(field, false)) return name(field, false)!;
  }
  if (!REGISTER_KINDS.includes(r.kind as RegisterKind)) {
    return `kind is ${JSON.stringify(r.kind)}: expected one of ${REGISTER_KINDS.join(", ")}`;
  }
  if (typeof r.reason !== "string") {
    return `reason is ${JSON.stringify(r.reason)}: expected a string`;
  }
  const time = r.time;
  if (typeof time !== "number" || !Number.isSafeInteger(time) || time < 0) {
    return `time is ${JSON.stringify(time)}: expected a non-negative integer`;
  }
  return {
    cluster: r.cluster as string,
    epoch,
    proposer: r.proposer as string,
    incarnation: r.incarnation as string,
    active: r.active as string | null,
    previous: r.previous as string | null,
    kind: r.kind as RegisterKind,
    reason: (r.reason as string).slice(0, MAX_REASON),
    time,
  };
}

/** Whether a name holds a control character (no log line or datagram should carry one). */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) < 0x20) return true;
  return false;
}
