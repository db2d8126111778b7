/** @jsxImportSource hono/jsx */
import { raw } from "hono/html";

/**
 * The dashboard page: a skeleton rendered here with hono's JSX, filled and kept current by a
 * small inline script from the server-sent events of `/v0/stream`. No build step, no CDN.
 */
export function DashboardPage(props: { name: string; springboard?: boolean }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{props.springboard ? `galerad springboard` : `galerad ${props.name}`}</title>
        <style>{raw(STYLE)}</style>
        {props.springboard ? "" : <link rel="stylesheet" href="/assets/uplot.css" />}
      </head>
      <body>
        <header>
          <h1>
            galerad <span id="proxy-name">{props.name}</span>
          </h1>
          <span id="conn" class="conn lost" role="status">connecting…</span>
        </header>
        {props.springboard
          ? (
            <main>
              <section>
                <h2>Proxies</h2>
                <table id="proxies" aria-label="proxies"></table>
              </section>
            </main>
          )
          : (
            <main>
              <section id="active-card" class="card big">
                <div class="label">Active node</div>
                <div id="active" class="active">—</div>
                <div id="active-reason" class="muted"></div>
              </section>
              <section class="card">
                <h2>Register</h2>
                <dl id="register"></dl>
              </section>
              <section class="card">
                <h2>Traffic</h2>
                <p id="traffic"></p>
                <button id="traffic-toggle" type="button">…</button>
              </section>
              <section class="wide">
                <h2>Backends</h2>
                <table id="backends" aria-label="backends"></table>
              </section>
              <section class="wide">
                <h2>
                  Peers <a href="/springboard">springboard</a>
                </h2>
                <table id="peers" aria-label="peers"></table>
              </section>
              <section class="wide">
                <h2>Last 15 minutes</h2>
                <div id="charts" class="charts">
                  <div id="chart-sessions" class="chart"></div>
                  <div id="chart-accepted" class="chart"></div>
                  <div id="chart-bytes" class="chart"></div>
                  <div id="chart-refused" class="chart"></div>
                  <div id="chart-probes" class="chart"></div>
                </div>
              </section>
              <section class="wide">
                <h2>Events</h2>
                <ol id="events"></ol>
              </section>
            </main>
          )}
        {props.springboard ? "" : <script src="/assets/uplot.js"></script>}
        <script>{raw(props.springboard ? SPRINGBOARD_SCRIPT : SCRIPT)}</script>
      </body>
    </html>
  );
}

const STYLE = `
:root { color-scheme: light dark; --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #6e7781; }
* { box-sizing: border-box; }
body { font: 16px/1.4 system-ui, sans-serif; margin: 0; padding: 0 1rem 2rem; }
header { display: flex; align-items: center; justify-content: space-between; gap: 1rem; flex-wrap: wrap; }
h1 { font-size: 1.4rem; margin: .8rem 0; } h2 { font-size: 1.05rem; margin: .2rem 0 .6rem; }
main { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(18rem, 1fr)); }
.wide { grid-column: 1 / -1; overflow-x: auto; }
.charts { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(26rem, 1fr)); }
.chart { min-height: 12rem; }
.card { border: 1px solid #8884; border-radius: .5rem; padding: .8rem 1rem; }
.big .active { font-size: clamp(2rem, 7vw, 5rem); font-weight: 700; line-height: 1.1; }
.label, .muted { color: var(--muted); font-size: .9rem; }
.conn { padding: .2rem .6rem; border-radius: 1rem; font-size: .9rem; color: #fff; }
.conn.live { background: var(--ok); } .conn.lost { background: var(--bad); }
table { border-collapse: collapse; width: 100%; font-size: .95rem; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #8883; white-space: nowrap; }
td.reason { white-space: normal; min-width: 12rem; }
.healthy { color: var(--ok); font-weight: 600; } .unhealthy, .no { color: var(--bad); font-weight: 600; }
.drained { color: var(--warn); font-weight: 600; }
tr.is-active { background: #1a7f3722; }
dl { display: grid; grid-template-columns: auto 1fr; gap: .2rem .8rem; margin: 0; } dt { color: var(--muted); }
ol#events { margin: 0; padding-left: 1.2rem; max-height: 22rem; overflow-y: auto; font-size: .92rem; }
button { font: inherit; padding: .3rem .7rem; border-radius: .4rem; border: 1px solid #8886; cursor: pointer; }
@media (min-width: 1800px) { body { font-size: 20px; } }
`;

/** Shared by both pages: escaping, the SSE connection and its indicator. */
const COMMON = `
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const ago = (iso) => { if (!iso) return "never"; const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000); return s < 90 ? s.toFixed(1) + "s ago" : Math.round(s / 60) + "m ago"; };
function connect(path, onState) {
  const conn = document.getElementById("conn");
  const source = new EventSource(path);
  source.addEventListener("state", (e) => { conn.textContent = "live"; conn.className = "conn live"; onState(JSON.parse(e.data)); });
  source.onerror = () => { conn.textContent = "connection lost — retrying"; conn.className = "conn lost"; };
}
async function call(method, path, body) {
  const res = await fetch(path, { method, headers: { "content-type": "application/json", "x-galerad-request": "1" }, body: body ? JSON.stringify(body) : undefined });
  if (!res.ok) alert((await res.json().catch(() => ({}))).error ?? ("request failed: " + res.status));
}
`;

const SCRIPT = COMMON + `
let state = null;
function render(s) {
  state = s;
  const c = s.cluster, r = c.register;
  document.getElementById("active").textContent = c.activeBackend ?? "none";
  document.getElementById("active-card").style.borderColor = c.activeBackend ? "var(--ok)" : "var(--bad)";
  document.getElementById("active-reason").textContent = c.activeReason;
  document.getElementById("register").innerHTML =
    "<dt>node</dt><dd id='reg-active'>" + esc(r.active ?? "none") + "</dd><dt>epoch</dt><dd id='reg-epoch'>" + esc(r.epoch) +
    "</dd><dt>proposer</dt><dd>" + esc(r.proposer || "—") + "</dd><dt>reason</dt><dd>" + esc(r.reason) +
    "</dd><dt>age</dt><dd>" + esc(r.time ? ago(r.time) : "—") + "</dd>";
  document.getElementById("traffic").innerHTML = c.trafficEnabled
    ? "<span class='healthy'>enabled</span>"
    : "<span class='unhealthy'>disabled</span>: " + esc(c.message);
  document.getElementById("traffic-toggle").textContent = c.trafficEnabled ? "Disable traffic…" : "Enable traffic";
  document.getElementById("backends").innerHTML =
    "<tr><th>node</th><th>address</th><th>health</th><th>active</th><th>sessions</th><th>readers</th><th>wsrep</th><th>index</th><th>last change</th><th></th></tr>" +
    s.backends.map((b) =>
      "<tr data-backend='" + esc(b.name) + "'" + (b.active ? " class='is-active'" : "") + "><td>" + esc(b.name) + "</td><td>" + esc(b.host + ":" + b.port) +
      "</td><td class='reason'><span class='" + (b.maintenance ? "drained" : b.healthy ? "healthy" : "unhealthy") + "'>" +
      esc(b.maintenance ? "drained" : b.status) + "</span> " + esc(b.reason) + "</td><td>" + (b.active ? "★ active" : b.writer === false ? "reader only" : "") +
      "</td><td>" + esc(b.currentSessionCount) + "</td><td class='readers'>" + esc(b.readerSessionCount ?? 0) + "</td><td>" + esc(b.wsrepLocalStateComment ?? "—") + "</td><td>" + esc(b.wsrepLocalIndex ?? "—") +
      "</td><td>" + esc(ago(b.lastChange)) + "</td><td>" +
      (b.active || !b.healthy || b.maintenance ? "" : "<button data-switch='" + esc(b.name) + "'>Switch here</button> ") +
      "<button data-drain='" + esc(b.name) + "' data-on='" + (b.maintenance ? "0" : "1") + "'>" + (b.maintenance ? "Enable" : "Drain") + "</button></td></tr>"
    ).join("");
  const peers = s.peers.peers;
  document.getElementById("peers").innerHTML = peers.length === 0
    ? "<tr><td class='muted'>no peers: this proxy decides alone</td></tr>"
    : "<tr><th>proxy</th><th>address</th><th>live</th><th>last seen</th><th>epoch</th><th>active</th><th>agrees</th></tr>" +
      peers.map((p) => "<tr><td>" + esc(p.name) + "</td><td>" + esc(p.address) + "</td><td class='" + (p.live ? "healthy" : "no") + "'>" +
        (p.live ? "live" : "down") + "</td><td>" + esc(ago(p.lastSeen)) + "</td><td>" + esc(p.epoch ?? "—") + "</td><td>" + esc(p.active ?? "—") +
        "</td><td class='" + (p.agrees ? "healthy" : "no") + "'>" + (p.agrees ? "yes" : "NO") + "</td></tr>").join("");
  document.getElementById("events").innerHTML = s.events.slice().reverse().map((e) =>
    "<li><time>" + esc(new Date(e.time).toLocaleTimeString()) + "</time> " + esc(e.message) + "</li>").join("");
}
document.addEventListener("click", async (e) => {
  const t = e.target;
  if (t.id === "traffic-toggle") {
    if (state.cluster.trafficEnabled) {
      const message = prompt("Disable all traffic through this proxy? Every session is closed. Why?");
      if (message) await call("PATCH", "/v0/cluster", { trafficEnabled: false, message });
    } else if (confirm("Enable traffic again?")) await call("PATCH", "/v0/cluster", { trafficEnabled: true });
  } else if (t.dataset.switch) {
    if (confirm("Switch the whole group to " + t.dataset.switch + "? Sessions on " + state.cluster.activeBackend + " are closed.")) {
      await call("POST", "/v0/cluster/switchover", { backend: t.dataset.switch, message: "from the dashboard" });
    }
  } else if (t.dataset.drain) {
    const on = t.dataset.on === "1";
    if (confirm((on ? "Drain " : "Enable ") + t.dataset.drain + "?")) await call("PATCH", "/v0/backends/" + encodeURIComponent(t.dataset.drain), { maintenance: on });
  }
});
connect("/v0/stream", render);
// Charts of the last 15 minutes (uPlot, served by this proxy): one sample a second from
// /v0/history, events marked on the time axis; redrawn every 2 s.
const charts = {};
const palette = ["#2a7ae2", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c"];
function marksPlugin(marks) {
  return { hooks: { draw: [(u) => {
    const ctx = u.ctx;
    ctx.save();
    for (const m of marks.current) {
      const x = u.valToPos(m.t / 1000, "x", true);
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
      ctx.strokeStyle = m.kind === "health" ? "#adb5bd" : "#d9480f";
      ctx.setLineDash(m.kind === "health" ? [2, 3] : []);
      ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
    }
    ctx.restore();
  }] } };
}
const marks = { current: [] };
function chart(id, title, names, columns, times) {
  const el = document.getElementById(id);
  const key = names.join("|");
  let c = charts[id];
  if (!c || c.key !== key) {
    if (c) c.plot.destroy();
    const opts = {
      title, width: Math.max(320, el.clientWidth || 480), height: 180,
      series: [{}].concat(names.map((n, i) => ({ label: n, stroke: palette[i % palette.length], width: 1.5 }))),
      axes: [{}, { size: 60 }],
      plugins: [marksPlugin(marks)],
    };
    c = charts[id] = { key, plot: new uPlot(opts, [times].concat(columns), el) };
  } else c.plot.setData([times].concat(columns));
}
async function refreshHistory() {
  if (typeof uPlot === "undefined") return;
  const res = await fetch("/v0/history").catch(() => null);
  if (!res || !res.ok) return;
  const h = await res.json();
  const S = h.samples;
  marks.current = h.marks;
  const t = S.map((s) => s.t / 1000);
  chart("chart-sessions", "sessions", ["writer", "reader"], [S.map((s) => s.sessions), S.map((s) => s.readerSessions)], t);
  chart("chart-accepted", "new sessions per second", ["accepted"], [S.map((s) => s.accepted)], t);
  chart("chart-bytes", "bytes per second", ["to backends", "to clients"], [S.map((s) => s.bytesUp), S.map((s) => s.bytesDown)], t);
  const reasons = [...new Set(S.flatMap((s) => Object.keys(s.refused)))].sort();
  chart("chart-refused", "refused per second", reasons.length ? reasons : ["none"],
    reasons.length ? reasons.map((r) => S.map((s) => s.refused[r] ?? 0)) : [S.map(() => 0)], t);
  const nodes = [...new Set(S.flatMap((s) => Object.keys(s.probeMs)))].sort();
  chart("chart-probes", "probe latency (ms)", nodes, nodes.map((n) => S.map((s) => s.probeMs[n] ?? null)), t);
}
refreshHistory();
setInterval(refreshHistory, 2000);
setInterval(() => state && render(state), 1000);
`;

const SPRINGBOARD_SCRIPT = COMMON + `
connect("/v0/stream", (s) => {
  const rows = [{ name: s.cluster.name, api: location.origin, live: true, epoch: s.cluster.register.epoch, active: s.cluster.activeBackend, self: true }]
    .concat(s.peers.peers.map((p) => ({ name: p.name, api: p.api, live: p.live, epoch: p.epoch, active: p.active, lastSeen: p.lastSeen })));
  document.getElementById("proxies").innerHTML =
    "<tr><th>proxy</th><th>state</th><th>epoch</th><th>active node</th><th>dashboard</th></tr>" +
    rows.map((p) => "<tr><td>" + esc(p.name) + (p.self ? " (this one)" : "") + "</td><td class='" + (p.live ? "healthy" : "no") + "'>" +
      (p.live ? "live" : "down, last seen " + esc(ago(p.lastSeen))) + "</td><td>" + esc(p.epoch ?? "—") + "</td><td>" + esc(p.active ?? "—") +
      "</td><td>" + (p.api && /^https?:\\/\\//i.test(p.api) ? "<a href='" + esc(p.api) + "/'>" + esc(p.api) + "</a>" : "<span class='muted'>unknown</span>") + "</td></tr>").join("");
});
`;

let hashes: Promise<{ scripts: string[]; styles: string[] }> | null = null;

/** The Content-Security-Policy hashes of the pages' inline scripts and style (constants). */
export function dashboardHashes(): Promise<{ scripts: string[]; styles: string[] }> {
  const sha = async (text: string) =>
    "sha256-" +
    btoa(String.fromCharCode(
      ...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))),
    ));
  hashes ??= Promise.all([sha(SCRIPT), sha(SPRINGBOARD_SCRIPT), sha(STYLE)]).then((
    [a, b, c],
  ) => ({ scripts: [a, b], styles: [c] }));
  return hashes;
}
