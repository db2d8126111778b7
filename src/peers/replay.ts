/** What is remembered of one sender to drop replayed datagrams. */
export interface ReplayState {
  boot: number;
  bootId: string;
  /** Highest sequence number accepted in this boot. */
  top: number;
  /** Bit i set: sequence `top - i` was accepted (i < WINDOW). */
  seen: bigint;
}

/** How far behind the highest sequence a reordered datagram may arrive and still count. */
export const WINDOW = 64;

/**
 * Accepts or rejects a datagram's (boot, boot id, sequence) against what was seen from the same
 * sender, like IPsec's anti-replay window. A newer boot starts afresh; an older boot is stale; in
 * the same boot each sequence counts once, and reordering within the window is tolerated.
 * Returns the new state, or the reason to drop.
 */
export function checkReplay(
  state: ReplayState | undefined,
  packet: { boot: number; bootId: string; seq: number },
): { state: ReplayState } | { drop: "replayed" | "stale_boot" } {
  const fresh = { state: { boot: packet.boot, bootId: packet.bootId, top: packet.seq, seen: 1n } };
  if (!state) return fresh;
  if (packet.bootId !== state.bootId) {
    if (packet.boot > state.boot) return fresh;
    return { drop: "stale_boot" };
  }
  if (packet.seq > state.top) {
    const shift = packet.seq - state.top;
    const seen = shift >= WINDOW
      ? 1n
      : ((state.seen << BigInt(shift)) | 1n) & ((1n << BigInt(WINDOW)) - 1n);
    return { state: { ...state, top: packet.seq, seen } };
  }
  const behind = state.top - packet.seq;
  if (behind >= WINDOW) return { drop: "replayed" };
  const bit = 1n << BigInt(behind);
  if (state.seen & bit) return { drop: "replayed" };
  return { state: { ...state, seen: state.seen | bit } };
}
