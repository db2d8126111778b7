/** One bound UDP socket as /proc/net/udp lists it. */
export interface ProcUdpSocket {
  localPort: number;
  inode: number;
  /** Datagrams the kernel dropped for it: refused by its filter or its receive buffer full. */
  drops: number;
}

/**
 * Parses /proc/net/udp (or udp6): one line per socket after the header, `local_address` as
 * HEXADDR:HEXPORT, the inode tenth and the drop count last. Lines that do not parse are skipped.
 */
export function parseProcNetUdp(text: string): ProcUdpSocket[] {
  const out: ProcUdpSocket[] = [];
  for (const line of text.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 13) continue;
    const port = parseInt(fields[1].split(":")[1] ?? "", 16);
    const inode = Number(fields[9]);
    const drops = Number(fields[fields.length - 1]);
    if (!Number.isInteger(port) || !Number.isInteger(inode) || !Number.isInteger(drops)) continue;
    out.push({ localPort: port, inode, drops });
  }
  return out;
}
