import mysql from "mysql2/promise";
import { readFileSync } from "node:fs";
const [port, pid] = [Number(process.argv[2]), Number(process.argv[3])];
const rss = () =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
const before = rss();
const conns: mysql.Connection[] = [];
for (let i = 0; i < 1000; i += 50) {
  conns.push(
    ...await Promise.all(Array.from({ length: 50 }, () =>
      mysql.createConnection({
        host: "127.0.0.1",
        port,
        user: "lab",
        password: "lab",
        connectTimeout: 10000,
      }))),
  );
}
for (const t of [1, 2, 5, 10, 20]) {
  await new Promise((r) => setTimeout(r, 1000 * (t === 1 ? 1 : t / 2)));
  console.log(`t~${t}s RSS ${before.toFixed(1)} -> ${rss().toFixed(1)} MiB`);
}
for (const c of conns) c.destroy();
process.exit(0);
