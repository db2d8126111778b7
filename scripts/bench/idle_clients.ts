/**
 * Idle sessions for the benches, run where the clients live (a network namespace, say): opens
 * COUNT TCP sessions to HOST:PORT, reads each one's greeting and prints `open N`; then, on a
 * line `mark MS` on stdin, waits up to MS for every session to close and prints
 * `closed N last MS median MS`, the times counted from the mark.
 *
 *   bun scripts/bench/idle_clients.ts HOST PORT COUNT
 */
import net from "node:net";
import process from "node:process";

const [host, portText, countText] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
let markedAt = 0;
const closedAt: number[] = [];
const sockets: net.Socket[] = [];

async function open(): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const s = net.connect({ host, port });
    s.once("data", () => resolve(true));
    s.once("error", () => resolve(false));
    s.once("close", () => {
      resolve(false);
      if (markedAt) closedAt.push(performance.now() - markedAt);
    });
    s.on("error", () => {});
    sockets.push(s);
  });
}

let opened = 0;
for (let i = 0; i < count; i += 100) {
  const batch = await Promise.all(Array.from({ length: Math.min(100, count - i) }, open));
  opened += batch.filter(Boolean).length;
}
console.log(`open ${opened}`);

process.stdin.on("data", (chunk) => {
  const m = /mark (\d+)/.exec(String(chunk));
  if (!m || markedAt) return;
  markedAt = performance.now();
  const limit = Number(m[1]);
  const timer = setInterval(() => {
    if (closedAt.length < opened && performance.now() - markedAt < limit) return;
    clearInterval(timer);
    const sorted = [...closedAt].sort((a, b) => a - b);
    const last = sorted.at(-1) ?? Number.NaN;
    const median = sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
    console.log(`closed ${sorted.length} last ${last.toFixed(1)} median ${median.toFixed(1)}`);
    for (const s of sockets) s.destroy();
    process.exit(0);
  }, 2);
});
