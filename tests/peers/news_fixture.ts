import type { PeerMessage } from "../../src/peers/codec.ts";

/** News from proxy `from` to `to` as a settled tier sends it: the register it follows is its own. */
export function stateNews(from: string, to: string, incarnation: string, epoch = 3): PeerMessage {
  const register = {
    cluster: "galera",
    epoch,
    proposer: "a",
    incarnation: "aa11",
    active: "db0",
    previous: null,
    kind: "failover" as const,
    reason: "db0 has the lowest wsrep_local_index 0",
    time: 1,
  };
  return {
    kind: "state",
    from,
    to,
    incarnation,
    digest: "abcd1234",
    register,
    epochSeen: epoch,
    view: { db0: { healthy: true, index: 0 }, db1: { healthy: true, index: 1 } },
    serving: "db0",
    follow: { register: { ...register }, majority: true },
    api: `http://127.0.0.1:9${from === "a" ? 1 : 2}00`,
  };
}
