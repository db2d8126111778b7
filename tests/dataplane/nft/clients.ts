/**
 * Clients for the kernel plane's conformance run, started inside the clients' namespace. Reads
 * JSON lines on stdin: `{"open":ID}` connects to HOST:PORT and answers `{"id","greeting"}` (the
 * node that answered); `{"send":ID,"text":T}` writes and answers the echo; a session that
 * closes reports `{"id","closed":ms since open,"error"}` at once, whoever closed it.
 */
import net from "node:net";
import { createInterface } from "node:readline";

const [host, port] = process.argv.slice(2);
const sockets = new Map<number, net.Socket>();
const say = (o: unknown) => console.log(JSON.stringify(o));

createInterface({ input: process.stdin }).on("line", (line) => {
  const command = JSON.parse(line);
  if ("open" in command) {
    const id = command.open as number;
    const socket = net.connect(Number(port), host);
    const opened = performance.now();
    let first = true;
    let error = "";
    sockets.set(id, socket);
    socket.setEncoding("utf8");
    socket.on("data", (data: string) => {
      if (first) say({ id, greeting: data.trim() });
      else say({ id, echo: data.trim() });
      first = false;
    });
    socket.on("error", (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.on("close", () => say({ id, closed: performance.now() - opened, error }));
  } else if ("send" in command) {
    sockets.get(command.send)?.write(`${command.text}\n`);
  }
});
