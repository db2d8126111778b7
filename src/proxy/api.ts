import { Hono } from "hono";
import { bodyCap, crossSiteGuard, securityHeaders } from "../http/cross_site_guard.ts";
import { basicAuth } from "hono/basic-auth";
import { timingSafeEqual } from "hono/utils/buffer";
import { parseDuration } from "../core/duration.ts";
import { streamSSE } from "hono/streaming";
import { dashboardHashes, DashboardPage } from "./dashboard.tsx";
import { UPLOT_CSS, UPLOT_JS } from "./assets/uplot.ts";
import { renderMetrics } from "./metrics.ts";
import type { BackendRuntime, Proxy } from "./proxy.ts";

/** Credentials for the API; both required. */
/** The API's credentials; the object is read at every request, so a reload may change them. */
export interface ApiAuth {
  user: string;
  password: string;
}

/** One backend as `GET /v0/backends` shows it: Switchboard's fields plus galerad's. */
export function backendView(proxy: Proxy, backend: BackendRuntime) {
  const health = backend.health;
  return {
    name: backend.spec.name,
    host: backend.spec.host,
    port: backend.spec.port,
    healthy: health.status === "healthy",
    active: proxy.active === backend.spec.name,
    currentSessionCount: proxy.sessionsOn(backend),
    readerSessionCount: proxy.reader?.sessionsOn(backend.spec.name) ?? 0,
    priority: backend.spec.priority ?? 0,
    writer: backend.spec.writer ?? true,
    trafficEnabled: proxy.traffic.enabled && !backend.maintenance,
    wsrepLocalIndex: health.wsrepLocalIndex,
    lastChange: health.lastChange === null ? null : new Date(health.lastChange).toISOString(),
    status: health.status,
    reason: health.reason,
    wsrepLocalState: health.wsrepLocalState,
    wsrepLocalStateComment: health.wsrepLocalStateComment,
    healthUrl: backend.spec.health,
    maintenance: backend.maintenance,
    lastProbe: health.lastProbe && {
      ok: health.lastProbe.ok,
      reason: health.lastProbe.reason,
      latencyMs: health.lastProbe.latencyMs,
    },
  };
}

/** The cluster as `GET /v0/cluster` shows it. */
export function clusterView(proxy: Proxy) {
  return {
    trafficEnabled: proxy.traffic.enabled,
    message: proxy.traffic.message,
    lastUpdated: new Date(proxy.traffic.lastUpdated).toISOString(),
    activeBackend: proxy.active,
    activeReason: proxy.activeReason,
    activeSince: proxy.activeSince === null ? null : new Date(proxy.activeSince).toISOString(),
    ready: proxy.ready,
    currentSessionCount: proxy.sessionCount,
    threads: proxy.threads,
    dataPlane: proxy.dataPlane,
    counters: proxy.counters,
    name: proxy.name,
    register: {
      ...proxy.register,
      time: proxy.register.time ? new Date(proxy.register.time).toISOString() : null,
    },
    quorum: quorumView(proxy),
    reader: readerView(proxy),
    config: {
      generation: proxy.configState.generation,
      loadedAt: new Date(proxy.configState.loadedAt).toISOString(),
      lastReloadError: proxy.configState.lastReloadError,
    },
  };
}

/**
 * The charts' data: a sample a second over the last 15 minutes, and the events to mark on the
 * time axis (active-node changes, switchovers, health and maintenance changes).
 */
export function historyView(proxy: Proxy) {
  const samples = proxy.history.ring.values();
  const since = samples[0]?.t ?? Date.now();
  const marks = proxy.events.list()
    .filter((e) =>
      e.time >= since && ["active", "register", "health", "maintenance"].includes(e.kind)
    )
    .map((e) => ({ t: e.time, kind: e.kind, message: e.message }));
  return { intervalMs: 1000, samples, marks };
}

/** The reader port: where it listens, where a reader would go now, its books. */
export function readerView(proxy: Proxy) {
  const reader = proxy.reader;
  if (!reader) return null;
  const choice = reader.choice();
  return {
    port: reader.port,
    fallback: reader.fallback,
    next: choice.node,
    ready: choice.node !== null,
    reason: choice.node === null
      ? choice.message
      : choice.fallback
      ? "fallback to the active node"
      : null,
    currentSessionCount: reader.sessionCount,
    counters: reader.counters,
  };
}

/** Who votes, how many are needed, and what each voter last answered this proxy. */
export function quorumView(proxy: Proxy) {
  const shell = proxy.shell;
  if (!shell) return null;
  const s = shell.state;
  const now = performance.now();
  return {
    mode: s.config.mode,
    reason: proxy.quorumReason,
    digest: s.digest,
    voters: s.config.voters,
    needed: Math.floor(s.config.voters.length / 2) + 1,
    serving: s.holder.serving,
    severing: s.holder.severing,
    grants: s.config.voters.map((voter) => {
      const g = s.holder.grants[voter];
      return {
        voter,
        node: g?.node ?? null,
        ageMs: g ? Math.round(now - g.t) : null,
        epoch: g?.register.epoch ?? null,
        why: g?.why ?? "no answer yet",
      };
    }),
  };
}

/** Every configured peer (and voting agent) as `GET /v0/peers` shows it. */
export function peersView(proxy: Proxy) {
  const shell = proxy.shell;
  const transport = proxy.transport;
  if (!shell || !transport) {
    return { self: proxy.name, peers: [], gossip: transport?.counters ?? null };
  }
  const now = performance.now();
  const current = proxy.register;
  const lease = shell.state.config.timers.leaseMs;
  const peers = Object.entries(shell.state.parties).map(([name, p]) => {
    const link = transport.parties.get(name);
    return {
      name,
      role: shell.state.config.peers.includes(name) ? "proxy" : "agent",
      voter: shell.state.config.voters.includes(name),
      address: link ? `${link.address.host}:${link.address.port}` : null,
      live: p.at !== null && now - p.at <= lease && p.mismatch === null,
      lastSeenAgoMs: p.at === null ? null : Math.round(now - p.at),
      epoch: p.register?.epoch ?? null,
      proposer: p.register?.proposer ?? null,
      active: p.register?.active ?? null,
      agrees: p.register !== null && p.register.epoch === current.epoch &&
        p.register.proposer === current.proposer && p.register.active === current.active,
      serving: p.serving,
      voterSetMismatch: p.mismatch,
      api: proxy.peerApis.get(name) ?? null,
      view: p.view,
      sent: link?.sent ?? 0,
      received: link?.received ?? 0,
      sendFailures: link?.sendFailures ?? 0,
      lastSendError: link?.lastError ?? null,
      /** It reads unchanged news as a hash ("same"): a release with compact news. */
      compactNews: link?.news.reads ?? false,
    };
  });
  return {
    self: proxy.name,
    listen: transport.port,
    kernelFilter: transport.kernelFilter,
    peers,
    gossip: transport.counters,
  };
}

/**
 * The authenticated JSON API on the API port. Switchboard-compatible where Switchboard has the
 * endpoint (`/v0/backends`, `/v0/cluster`), so existing scripts keep working.
 */
export function createApi(
  proxy: Proxy,
  auth: ApiAuth,
  options: { metricsPublic?: boolean } = {},
): Hono {
  const app = new Hono();
  app.use("*", securityHeaders(dashboardHashes), crossSiteGuard(), bodyCap());
  // Read at every request (not copied): a reload may change the credentials.
  const guard = basicAuth({
    verifyUser: async (user, password) => {
      const [u, p] = await Promise.all([
        timingSafeEqual(auth.user, user),
        timingSafeEqual(auth.password, password),
      ]);
      return u && p;
    },
    realm: "galerad",
    invalidUserMessage: { error: "authentication required" },
  });
  app.use("*", async (c, next) => {
    if (options.metricsPublic && c.req.path === "/metrics") return await next();
    return await guard(c, next);
  });
  app.get(
    "/metrics",
    (c) =>
      c.body(renderMetrics(proxy), 200, {
        "content-type": "text/plain; version=0.0.4; charset=utf-8",
      }),
  );
  app.get(
    "/v0/backends",
    (c) => c.json([...proxy.backends.values()].map((b) => backendView(proxy, b))),
  );
  app.patch("/v0/backends/:name", async (c) => {
    const name = c.req.param("name");
    if (!proxy.backends.has(name)) return c.json({ error: `no backend named "${name}"` }, 404);
    const body = await readJson(c.req.raw);
    if ("error" in body) return c.json({ error: body.error }, 400);
    const { maintenance, drainTimeout } = body.value as {
      maintenance?: unknown;
      drainTimeout?: unknown;
    };
    if (typeof maintenance !== "boolean") {
      return c.json({
        error: `maintenance must be true or false: current value is ${
          JSON.stringify(maintenance ?? null)
        }`,
      }, 400);
    }
    const timeoutMs = drainTimeout === undefined
      ? 30_000
      : parseDuration(drainTimeout as string | number);
    if (timeoutMs === undefined) {
      return c.json({
        error: `drainTimeout must be a duration like 30s: current value is ${
          JSON.stringify(drainTimeout)
        }`,
      }, 400);
    }
    try {
      if (maintenance) await proxy.drain(name, timeoutMs);
      else proxy.undrain(name);
    } catch (error) {
      return c.json({ error: (error as Error).message }, 409);
    }
    return c.json(backendView(proxy, proxy.backends.get(name)!));
  });
  app.get("/v0/cluster", (c) => c.json(clusterView(proxy)));
  app.get("/v0/events", (c) => c.json(proxy.events.list()));
  app.get("/v0/history", (c) => c.json(historyView(proxy)));
  app.get("/assets/uplot.js", (c) =>
    c.body(UPLOT_JS, 200, {
      "content-type": "text/javascript; charset=utf-8",
      "cache-control": "max-age=86400",
    }));
  app.get("/assets/uplot.css", (c) =>
    c.body(UPLOT_CSS, 200, {
      "content-type": "text/css; charset=utf-8",
      "cache-control": "max-age=86400",
    }));
  app.get("/v0/peers", (c) => c.json(peersView(proxy)));
  app.patch("/v0/cluster", async (c) => {
    const input = await readTrafficInput(c.req.raw);
    if ("error" in input) return c.json({ error: input.error }, 400);
    proxy.setTraffic(input.trafficEnabled, input.message);
    return c.json(clusterView(proxy));
  });
  app.post("/v0/cluster/switchover", async (c) => {
    const body = await readJson(c.req.raw);
    if ("error" in body) return c.json({ error: body.error }, 400);
    const { backend, message } = body.value as { backend?: unknown; message?: unknown };
    if (typeof backend !== "string" || backend === "") {
      return c.json({
        error: `backend must name the node to switch to: current value is ${
          JSON.stringify(backend ?? null)
        }`,
      }, 400);
    }
    try {
      proxy.switchover(backend, typeof message === "string" ? message : "");
    } catch (error) {
      const status = (error as { status?: number }).status ?? 409;
      return c.json({ error: (error as Error).message }, status as 409 | 503);
    }
    return c.json(clusterView(proxy));
  });
  app.get("/", (c) => c.html("<!doctype html>" + String(DashboardPage({ name: proxy.name }))));
  app.get(
    "/springboard",
    (c) =>
      c.html("<!doctype html>" + String(DashboardPage({ name: proxy.name, springboard: true }))),
  );
  app.get("/v0/stream", (c) =>
    streamSSE(c, async (stream) => {
      let wake: (() => void) | null = null;
      const unsubscribe = proxy.events.subscribe(() => wake?.());
      stream.onAbort(() => {
        unsubscribe();
        wake?.();
      });
      while (!stream.aborted && !stream.closed) {
        await stream.writeSSE({ event: "state", data: JSON.stringify(snapshot(proxy)) });
        // Right after any event, and at least every second (session counts, ages).
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 1000);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
      }
    }));
  app.notFound((c) => c.json({ error: `no such endpoint: ${c.req.method} ${c.req.path}` }, 404));
  return app;
}

/** Everything the dashboard shows, in one object. */
export function snapshot(proxy: Proxy) {
  return {
    cluster: clusterView(proxy),
    backends: [...proxy.backends.values()].map((b) => backendView(proxy, b)),
    peers: peersView(proxy),
    events: proxy.events.list().slice(-50),
  };
}

async function readJson(
  request: Request,
): Promise<{ value: Record<string, unknown> } | { error: string }> {
  const text = await request.text();
  if (text.trim() === "") return { value: {} };
  try {
    const value = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return { error: "body must be a JSON object" };
    }
    return { value };
  } catch {
    return { error: "body is not valid JSON" };
  }
}

/**
 * Reads `trafficEnabled` and `message` from the query string (Switchboard's form) or a JSON
 * body. Disabling needs a message, so whoever looks next knows why traffic stopped.
 */
async function readTrafficInput(
  request: Request,
): Promise<{ trafficEnabled: boolean; message: string } | { error: string }> {
  const body = await readJson(request);
  if ("error" in body) return body;
  const raw: Record<string, unknown> = {
    ...Object.fromEntries(new URL(request.url).searchParams),
    ...body.value,
  };
  const flag = raw.trafficEnabled;
  const enabled = flag === true || flag === "true"
    ? true
    : flag === false || flag === "false"
    ? false
    : undefined;
  if (enabled === undefined) {
    return {
      error: `trafficEnabled must be true or false: current value is ${
        JSON.stringify(flag ?? null)
      }`,
    };
  }
  const message = typeof raw.message === "string" ? raw.message.trim() : "";
  if (!enabled && message === "") {
    return { error: "message is required when trafficEnabled is false: say why traffic stops" };
  }
  return { trafficEnabled: enabled, message };
}

/**
 * The load-balancer port (1936): `GET /` and any other path answer 200 while the process runs,
 * as Switchboard's does; `GET /ready` answers 503 while this proxy cannot route (no active node,
 * traffic disabled, starting or draining), for load balancers that can use it;
 * `GET /ready?port=reader` says whether the reader port can place a client now.
 */
export function createHealthApp(proxy: Proxy): Hono {
  const app = new Hono();
  app.use("*", securityHeaders(), crossSiteGuard(), bodyCap());
  app.get("/ready", (c) => {
    const port = c.req.query("port") ?? "writer";
    if (port === "reader") {
      if (!proxy.reader) return c.text("not ready: no reader port (--reader-listen)\n", 503);
      const choice = proxy.reader.choice();
      return choice.node === null
        ? c.text(`not ready: ${choice.message}\n`, 503)
        : c.text(`ready: ${choice.node}\n`);
    }
    if (port !== "writer") {
      return c.text(
        `port must be writer or reader: current value is ${JSON.stringify(port)}\n`,
        400,
      );
    }
    const why = proxy.stopping
      ? "stopping"
      : proxy.shell === null
      ? "starting"
      : proxy.draining
      ? "draining"
      : !proxy.traffic.enabled
      ? "traffic disabled"
      : proxy.active === null
      ? "no active node"
      : null;
    return why === null ? c.text(`ready: ${proxy.active}\n`) : c.text(`not ready: ${why}\n`, 503);
  });
  app.all("*", (c) => c.text("ok\n"));
  return app;
}
