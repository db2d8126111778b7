import dgram from "node:dgram";

/** How a relay mistreats datagrams. */
export interface Mischief {
  drop: number;
  duplicate: number;
  /** Each datagram is delayed by 0..maxDelayMs, so later ones may overtake it. */
  maxDelayMs: number;
}

export interface UdpRelay {
  port: number;
  /** The last 500 datagrams that passed, for replay tests. */
  recorded: Uint8Array[];
  forwarded: number;
  dropped: number;
  /** While true every datagram is dropped: the link is cut in this direction. */
  blocked: boolean;
  close(): void;
}

/**
 * A UDP relay for tests: forwards every datagram it receives to `target`, dropping,
 * duplicating and reordering them as `mischief` says.
 */
export function startRelay(targetPort: number, mischief: Mischief): Promise<UdpRelay> {
  const socket = dgram.createSocket("udp4");
  const relay: UdpRelay = {
    port: 0,
    recorded: [],
    forwarded: 0,
    dropped: 0,
    blocked: false,
    close: () => socket.close(),
  };
  const timers = new Set<ReturnType<typeof setTimeout>>();
  socket.on("message", (msg) => {
    relay.recorded.push(new Uint8Array(msg));
    if (relay.recorded.length > 500) relay.recorded.shift();
    if (relay.blocked || Math.random() < mischief.drop) {
      relay.dropped++;
      return;
    }
    const copies = Math.random() < mischief.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const t = setTimeout(() => {
        timers.delete(t);
        relay.forwarded++;
        socket.send(msg, targetPort, "127.0.0.1");
      }, Math.random() * mischief.maxDelayMs);
      timers.add(t);
    }
  });
  relay.close = () => {
    for (const t of timers) clearTimeout(t);
    socket.close();
  };
  return new Promise((resolve) =>
    socket.bind(0, "127.0.0.1", () => {
      relay.port = socket.address().port;
      resolve(relay);
    })
  );
}
