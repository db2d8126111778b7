/**
 * Drives the kernel path from inside the proxy's namespace (the conformance test, the kernel
 * bench). Listens on the proxy port itself and refuses every client there with a MySQL error
 * packet, as galerad's listener does when no node is active; then reads JSON lines:
 * `{"point":{"name","host","port"}|null}`, `{"drain":true}`, `{"wake":true}`, `{"counts":true}`,
 * `{"close":true}`; answers each with `{"ok":…}` or `{"error":…}`.
 */
import process from "node:process";
import { loadLibc } from "#thread";
import net from "node:net";
import { createInterface } from "node:readline";
import { ER_UNKNOWN_ERROR, mysqlErrorPacket } from "../../src/core/mysql_packet.ts";
import { NftPath } from "../../src/dataplane/nft_path.ts";

const [host, port] = process.argv.slice(2);
const say = (o: unknown) => console.log(JSON.stringify(o));

/** What a client that reaches the proxy's own listener reads. */
export const NOWHERE = "galerad: no active node (the kernel path points nowhere)";
net.createServer((socket) => {
  socket.on("error", () => {});
  socket.end(mysqlErrorPacket(ER_UNKNOWN_ERROR, "08004", NOWHERE));
}).listen(Number(port), host);

try {
  const path = await NftPath.open({ host, port: Number(port) }, await loadLibc());
  say({ ok: "open" });
  createInterface({ input: process.stdin }).on("line", async (line) => {
    const command = JSON.parse(line);
    try {
      if ("point" in command) say({ ok: await path.point(command.point) ?? "pointed" });
      else if ("drain" in command) say({ ok: await path.drain() ?? "drained" });
      else if ("wake" in command) say({ ok: await path.wakeStale() });
      else if ("counts" in command) say({ ok: Object.fromEntries(await path.counts()) });
      else if ("close" in command) {
        await path.close();
        say({ ok: "closed" });
        process.exit(0);
      }
    } catch (error) {
      say({ error: String(error) });
    }
  });
} catch (error) {
  say({ error: (error as Error).message });
  process.exit(2);
}
