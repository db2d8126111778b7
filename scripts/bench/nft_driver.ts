/**
 * Drives the kernel path from inside the proxy's namespace (the conformance test, the kernel bench). Listens on
 * the proxy port itself (as galerad's listener would: greeting `local`), then reads JSON lines:
 * `{"point":{"name","host","port"}|null}`, `{"drain":true}`, `{"wake":true}`, `{"counts":true}`,
 * `{"close":true}`; answers each with `{"ok":…}` or `{"error":…}`.
 */
import { loadLibc } from "#thread";
import net from "node:net";
import { createInterface } from "node:readline";
import { NftPath } from "../../src/dataplane/nft_path.ts";

const [host, port] = process.argv.slice(2);
const say = (o: unknown) => console.log(JSON.stringify(o));

net.createServer((socket) => {
  socket.on("error", () => {});
  socket.write("local\n");
}).listen(Number(port), host);

try {
  const path = await NftPath.open({ host, port: Number(port) }, await loadLibc());
  say({ ok: "open" });
  createInterface({ input: process.stdin }).on("line", async (line) => {
    const command = JSON.parse(line);
    try {
      if ("point" in command) say({ ok: await path.point(command.point) ?? "pointed" });
      else if ("drain" in command) say({ ok: await path.drain() ?? "drained" });
      else if ("wake" in command) say({ ok: { open: await path.wakeStale() } });
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
