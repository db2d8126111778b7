/**
 * Run inside a network namespace: forwards Unix sockets (which every namespace shares through the
 * file system) to TCP addresses inside the namespace, so a test in the host's namespace reaches
 * a proxy's client port and API without any change to the host's network.
 *
 *   bun tests/helpers/ns_bridge.ts /tmp/x/client.sock=127.0.0.1:3306 /tmp/x/api.sock=127.0.0.1:8080
 */
import { rmSync } from "node:fs";
import net from "node:net";
import process from "node:process";

// startDaemon appends its logging flags; only PATH=HOST:PORT arguments are forwards.
for (const arg of process.argv.slice(2).filter((a) => a.includes("="))) {
  const [path, target] = arg.split("=");
  const [host, port] = [
    target.slice(0, target.lastIndexOf(":")),
    Number(target.slice(target.lastIndexOf(":") + 1)),
  ];
  rmSync(path, { force: true });
  net.createServer((client) => {
    const server = net.connect(port, host);
    client.pipe(server);
    server.pipe(client);
    const end = () => {
      client.destroy();
      server.destroy();
    };
    client.on("error", end);
    server.on("error", end);
    client.on("close", end);
    server.on("close", end);
  }).listen(path, () => console.log(`ready ${path}`));
}
