/**
 * Reading the kernel's connection tracking table as `conntrack -L` prints it: the flows the
 * kernel data plane carries, with their marks and byte counters. Pure parsing; the caller runs
 * the command.
 */

/** One direction of a tracked flow. */
export interface Tuple {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  packets: number;
  bytes: number;
}

/** A tracked TCP flow: as the client sent it, and as the node answers it. */
export interface Flow {
  state: string;
  original: Tuple;
  reply: Tuple;
  mark: number;
}

function tuple(fields: Map<string, string>[], i: number): Tuple | null {
  const f = fields[i];
  if (!f) return null;
  const src = f.get("src"), dst = f.get("dst");
  const sport = Number(f.get("sport")), dport = Number(f.get("dport"));
  if (!src || !dst || !Number.isInteger(sport) || !Number.isInteger(dport)) return null;
  return {
    src,
    dst,
    sport,
    dport,
    packets: Number(f.get("packets") ?? 0),
    bytes: Number(f.get("bytes") ?? 0),
  };
}

/** The TCP flows of `conntrack -L -p tcp` output; other lines are skipped. */
export function parseConntrack(text: string): Flow[] {
  const flows: Flow[] = [];
  for (const line of text.split("\n")) {
    const words = line.trim().split(/\s+/);
    if (words[0] !== "tcp") continue;
    // Each direction repeats src/dst/sport/dport/packets/bytes; a new `src=` starts the second.
    const directions: Map<string, string>[] = [];
    let mark = 0;
    for (const word of words.slice(3)) {
      const eq = word.indexOf("=");
      if (eq < 0) continue;
      const key = word.slice(0, eq), value = word.slice(eq + 1);
      if (key === "mark") mark = Number(value);
      else if (key === "src") directions.push(new Map([[key, value]]));
      else directions.at(-1)?.set(key, value);
    }
    const original = tuple(directions, 0), reply = tuple(directions, 1);
    if (!original || !reply || !Number.isFinite(mark)) continue;
    flows.push({ state: words[3] ?? "", original, reply, mark });
  }
  return flows;
}
