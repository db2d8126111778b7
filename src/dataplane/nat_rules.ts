/**
 * The nftables rules of the kernel data plane, as the commands `nft -i` reads: pure text, no I/O.
 *
 * Two tables. The route table is flagged `owner`: the kernel deletes it when the `nft` process
 * that made it ends, so a galerad that dies leaves no rule pointing anywhere. It marks each new
 * flow with the route's generation (a conntrack mark), sends it to the active node and marks
 * the packets of the current generation's flows as blessed. The guard table stays: it resets
 * every galerad flow whose packets are not blessed, so flows of an older generation (the node
 * that lost the role) are cut, and with galerad gone, all of them are: the tier fails closed.
 * Rules match IPv4 clients that reach this host over the network: a client on the proxy host
 * itself does not pass the prerouting hook.
 */
import { type HostPort, isWildcardHost } from "../core/address.ts";

/** The conntrack marks galerad owns: the top byte, the generation in the rest. */
export const FLOW_MARK = 0x47000000;
const FLOW_MASK = 0xff000000;
/** The packet mark of a flow of the current generation, read by the guard. */
export const BLESSED = 0x47;
/** The packet mark of the segments that wake an idle flow's ends (poke.ts); never tracked. */
export const POKE_MARK = 0x6a1e;
/** Generations cycle through the 24 bits below the mark's top byte, skipping 0. */
export const MAX_GENERATION = 0xffffff;

const hex = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;

/** The conntrack mark of generation `g`. */
export function flowMark(generation: number): number {
  if (!Number.isInteger(generation) || generation < 1 || generation > MAX_GENERATION) {
    throw new RangeError(`generation: expected 1..${MAX_GENERATION}, got ${generation}`);
  }
  return FLOW_MARK + generation;
}

/** The generation after `g`, wrapping to 1. */
export function nextGeneration(generation: number): number {
  return generation >= MAX_GENERATION ? 1 : generation + 1;
}

/**
 * Where new flows go: a node (its traffic added to the named counters of `counter`, see
 * routeTable), or nowhere: with null, new flows reach galerad's own listener untouched (it
 * holds or refuses them) and no flow stays blessed.
 */
export type NatTarget = { node: HostPort; counter?: number } | null;

/** Matches the clients' first packet to `listen`; a wildcard listens on every local address. */
function listenMatch(listen: HostPort): string {
  const to = isWildcardHost(listen.host) ? "fib daddr type local" : `ip daddr ${listen.host}`;
  return `${to} tcp dport ${listen.port}`;
}

/**
 * Commands that create the route table `table`, with no route yet (every new flow is left
 * alone) and `counters` sets of named counters, one per node: `new_N` counts flows routed to
 * node N, `up_N` and `down_N` their bytes each way.
 */
export function routeTable(table: string, counters = 0): string[] {
  const t = `ip ${table}`;
  const named = Array.from({ length: counters }, (_, i) => counterCommands(table, i));
  return [
    `add table ${t} { flags owner; }`,
    ...named,
    `add chain ${t} prerouting { type nat hook prerouting priority dstnat; policy accept; }`,
    `add chain ${t} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
    `add chain ${t} forward { type filter hook forward priority filter - 10; policy accept; }`,
    `add chain ${t} rawout { type filter hook output priority raw; policy accept; }`,
    // Replies must come back through this host to be translated back.
    `add rule ${t} postrouting ct mark and ${hex(FLOW_MASK)} == ${hex(FLOW_MARK)} masquerade`,
    `add rule ${t} rawout meta mark ${hex(POKE_MARK)} notrack`,
  ];
}

/** The commands that add node `index`'s named counters (routeTable) to `table`, as one line. */
export function counterCommands(table: string, index: number): string {
  return ["new", "up", "down"].map((name) => `add counter ip ${table} ${name}_${index}`).join("; ");
}

/**
 * One line, so `nft -i` applies it as one transaction: new flows to `listen` go to `target`
 * marked with `generation`, and only that generation's flows stay blessed.
 */
export function routeSwap(
  table: string,
  listen: HostPort,
  generation: number,
  target: NatTarget,
): string {
  const t = `ip ${table}`;
  const mark = hex(flowMark(generation));
  const commands = [`flush chain ${t} prerouting`, `flush chain ${t} forward`];
  if (target === null) return commands.join("; ");
  const counter = target.counter ?? null;
  const count = (name: string) => counter === null ? "" : ` counter name ${name}_${counter}`;
  const to = `dnat to ${target.node.host}:${target.node.port}`;
  const bless = `meta mark set ${hex(BLESSED)}`;
  commands.push(
    `add rule ${t} prerouting ${listenMatch(listen)}${count("new")} ct mark set ${mark} ${to}`,
  );
  if (counter === null) commands.push(`add rule ${t} forward ct mark ${mark} ${bless}`);
  else {
    commands.push(
      `add rule ${t} forward ct mark ${mark} ct direction original${count("up")} ${bless}`,
      `add rule ${t} forward ct mark ${mark} ct direction reply${count("down")} ${bless}`,
    );
  }
  return commands.join("; ");
}

/** One line: no new flows are routed, the ones running stay blessed (a drain before a stop). */
export function routeDrain(table: string): string {
  return `flush chain ip ${table} prerouting`;
}

/** The guard table `table`: one file for `nft -f -` (it outlives galerad on purpose). */
export function guardTable(table: string): string {
  return `table ip ${table} {
  chain forward {
    type filter hook forward priority filter; policy accept;
    ct mark and ${hex(FLOW_MASK)} == ${hex(FLOW_MARK)} meta mark != ${
    hex(BLESSED)
  } reject with tcp reset
  }
}
`;
}
