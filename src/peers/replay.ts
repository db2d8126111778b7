/** One boot's window: the highest sequence accepted and the 64 behind it. */
export interface BootWindow {
  bootId: string;
  /** Highest sequence number accepted in this boot. */
  top: number;
  /** Bit i set: sequence `top - i` was accepted (i < WINDOW). */
  seen: bigint;
}

/** What is remembered of one sender: a window for each of its last few boots, newest first. */
export interface ReplayState {
  boots: BootWindow[];
}

/** How far behind the highest sequence a reordered datagram may arrive and still count. */
export const WINDOW = 64;
/** Boots remembered per sender: a restart's datagrams may still meet the last life's. */
export const BOOTS = 4;

/**
 * Accepts or rejects a datagram's (boot id, sequence) against what was seen from the same
 * sender, like IPsec's anti-replay window, kept per boot. No clock is read: a boot id never seen
 * starts a window of its own. An old boot's datagram replayed after its window is forgotten is
 * accepted again, and harmless: a lease grant only counts for the request stamp it answers, on
 * the asker's monotonic clock (docs/peers.md, "Replays"). Returns the new state, or the reason.
 */
export function checkReplay(
  state: ReplayState | undefined,
  packet: { bootId: string; seq: number },
): { state: ReplayState } | { drop: "replayed" } {
  const boots = state?.boots ?? [];
  const index = boots.findIndex((b) => b.bootId === packet.bootId);
  if (index < 0) {
    const fresh = { bootId: packet.bootId, top: packet.seq, seen: 1n };
    return { state: { boots: [fresh, ...boots].slice(0, BOOTS) } };
  }
  const window = boots[index];
  const next = advance(window, packet.seq);
  if (!next) return { drop: "replayed" };
  const rest = boots.filter((_, i) => i !== index);
  return { state: { boots: [next, ...rest] } };
}

function advance(state: BootWindow, seq: number): BootWindow | null {
  if (seq > state.top) {
    const shift = seq - state.top;
    const seen = shift >= WINDOW
      ? 1n
      : ((state.seen << BigInt(shift)) | 1n) & ((1n << BigInt(WINDOW)) - 1n);
    return { ...state, top: seq, seen };
  }
  const behind = state.top - seq;
  if (behind >= WINDOW) return null;
  const bit = 1n << BigInt(behind);
  if (state.seen & bit) return null;
  return { ...state, seen: state.seen | bit };
}
