/**
 * Stand-in nodes for the kernel plane's conformance run, started inside the nodes' namespace:
 * one TCP server per port given, each greeting with its name (`node-PORT`) and echoing lines;
 * each close is printed (`closed PORT PEERPORT`), so the test sees the node's end go too.
 * The driver of the route listens on the proxy's port the same way, named `local`.
 */
import net from "node:net";

const [host, ...ports] = process.argv.slice(2);
for (const port of ports.map(Number)) {
  net.createServer((socket) => {
    socket.on("error", () => {});
    socket.on("close", () => console.log(`closed ${port} ${socket.remotePort}`));
    socket.write(`node-${port}\n`);
    socket.on("data", (data) => socket.write(data));
  }).listen(port, host, () => console.log(`listening ${port}`));
}
