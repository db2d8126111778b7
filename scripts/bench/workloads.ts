/** Client loads beyond sysbench: new connections at a fixed rate, one large result. */
import net from "node:net";
import { connect } from "../lab/lab.ts";

/** New TCP connections per second for `seconds`: connect, read the server greeting, close. */
export async function connectionRate(port: number, perSecond: number, seconds: number) {
  let ok = 0;
  let failed = 0;
  const attempts: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < perSecond * seconds; i++) {
    const due = start + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    attempts.push(
      new Promise<void>((resolve) => {
        const s = net.connect({ host: "127.0.0.1", port });
        const timer = setTimeout(() => (failed++, s.destroy(), resolve()), 5000);
        s.once("data", (d) => {
          clearTimeout(timer);
          if (d[4] === 0xff) failed++;
          else ok++;
          s.destroy();
          resolve();
        });
        s.once("error", () => (clearTimeout(timer), failed++, resolve()));
      }),
    );
  }
  await Promise.all(attempts);
  return { ok, failed, achieved: (ok + failed) / ((performance.now() - start) / 1000) };
}

/** Reads a ~64 MiB result through `port` and returns MB/s. */
export async function bulk(port: number): Promise<number> {
  const c = await connect(port);
  try {
    const started = performance.now();
    const [rows] = await c.query("SELECT REPEAT('x', 1048576) AS b FROM lab.bulk");
    const bytes = (rows as { b: string }[]).reduce((n, r) => n + r.b.length, 0);
    return bytes / 1e6 / ((performance.now() - started) / 1000);
  } finally {
    await c.end();
  }
}
