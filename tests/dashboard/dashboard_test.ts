/**
 * The dashboard in headless Chromium (Debian's package, driven by playwright-core): credentials,
 * live updates over server-sent events, the switchover button, the lost-connection banner.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import path from "node:path";
import { type Browser, chromium } from "playwright-core";
import { serveHttp } from "#runtime";
import { createApi } from "../../src/proxy/api.ts";
import type { Proxy } from "../../src/proxy/proxy.ts";
import type { HttpServer } from "../../src/runtime/types.ts";
import {
  connectClient,
  startAgent,
  startBackend,
  type TestAgent,
  type TestBackend,
} from "../../scripts/lab/fixtures.ts";
import { ROOT } from "../../scripts/lab/spawn.ts";
import { testProxy } from "../helpers/test_proxy.ts";

let browser: Browser;
let proxy: Proxy;
let server: HttpServer;
let backends: TestBackend[];
let agents: TestAgent[];
let url: string;
const credentials = { username: "ops", password: "dash-pw" };

beforeAll(async () => {
  backends = [];
  agents = [];
  for (let i = 0; i < 3; i++) {
    backends.push(await startBackend(`db${i}`));
    agents.push(await startAgent({ healthy: true, index: i }));
  }
  proxy = testProxy(backends, agents, { intervalMs: 100, timeoutMs: 300, name: "edge-1" });
  await proxy.start();
  await proxy.whenReady();
  server = await serveHttp(
    { host: "127.0.0.1", port: 0 },
    createApi(proxy, { user: credentials.username, password: credentials.password }).fetch,
  );
  url = `http://127.0.0.1:${server.port}`;
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await proxy?.shutdown();
  for (const x of [...(backends ?? []), ...(agents ?? [])]) await x.close();
});

describe("dashboard in headless Chromium", () => {
  test("refuses without credentials", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    // Chromium answers the Basic Auth challenge with no credentials by failing the navigation.
    await expect(page.goto(url)).rejects.toThrow("ERR_INVALID_AUTH_CREDENTIALS");
    const res = await context.request.get(url);
    expect(res.status()).toBe(401);
    expect(res.headers()["www-authenticate"]).toBe('Basic realm="galerad"');
    await context.close();
  });

  test(
    "shows the active node, follows a failover live, and the switchover button moves it",
    async () => {
      const context = await browser.newContext({
        httpCredentials: credentials,
        viewport: { width: 1280, height: 900 },
      });
      const page = await context.newPage();
      const res = await page.goto(url);
      expect(res?.status()).toBe(200);
      await page.locator("#conn", { hasText: "live" }).waitFor({ timeout: 5000 });
      expect(await page.locator("#active").textContent()).toBe("db0");
      expect(await page.locator("#proxy-name").textContent()).toBe("edge-1");
      expect(await page.locator("#backends tr[data-backend]").count()).toBe(3);

      // A failover on the test backends shows within 2 s, without a reload.
      agents[0].set({ healthy: false });
      const started = Date.now();
      await page.locator("#active", { hasText: "db1" }).waitFor({ timeout: 2000 });
      expect(Date.now() - started).toBeLessThan(2000);
      await page.locator("#events li", { hasText: "active node is now db1" }).first().waitFor({
        timeout: 2000,
      });
      await page.screenshot({ path: path.join(ROOT, "docs/dashboard.png"), fullPage: true });

      // The switchover button asks for confirmation, then moves the group.
      page.once("dialog", (dialog) => dialog.accept());
      await page.locator("button[data-switch='db2']").click();
      await page.locator("#active", { hasText: "db2" }).waitFor({ timeout: 3000 });
      expect(proxy.register.active).toBe("db2");
      expect(proxy.register.reason).toContain("switchover by operator");
      await context.close();
    },
    30_000,
  );

  test(
    "a cross-site form post and a no-cors fetch are refused; the page is unframeable",
    async () => {
      const before = proxy.register.active;
      const target = before === "db1" ? "db0" : "db1";
      // Another origin (another port) serving an attacker's page.
      const evil = await serveHttp({ host: "127.0.0.1", port: 0 }, () =>
        new Response(
          `<!doctype html><body><form id=f method=POST enctype="text/plain" action="${url}/v0/cluster/switchover">` +
            `<input name='{"backend":"${target}","message":"x","pad":"' value='"}'></form>` +
            `<iframe id=fr src="${url}/"></iframe>` +
            `<script>fetch("${url}/v0/cluster/switchover",{method:"POST",mode:"no-cors",` +
            `credentials:"include",body:'{"backend":"${target}"}'}).finally(()=>f.submit())</script>`,
          { headers: { "content-type": "text/html" } },
        ));
      try {
        const context = await browser.newContext({ httpCredentials: credentials });
        const page = await context.newPage();
        const refused: number[] = [];
        page.on("response", (r) => {
          if (r.url().startsWith(url) && r.request().method() !== "GET") refused.push(r.status());
        });
        await page.goto(`http://127.0.0.1:${evil.port}/`);
        await page.waitForURL(`${url}/v0/cluster/switchover`, { timeout: 5000 });
        expect(await page.textContent("body")).toContain("cross-site request refused");
        expect(refused).toEqual([403, 403]);
        expect(proxy.register.active).toBe(before);
        expect(proxy.traffic.enabled).toBe(true);
        const own = await context.request.get(`${url}/`);
        expect(own.headers()["content-security-policy"]).toContain("frame-ancestors 'none'");
        expect(own.headers()["x-content-type-options"]).toBe("nosniff");
        await context.close();
      } finally {
        await evil.close();
      }
    },
    30_000,
  );

  test(
    "charts of the last 15 minutes render with their data and event marks, no script error",
    async () => {
      const context = await browser.newContext({
        httpCredentials: credentials,
        viewport: { width: 1280, height: 1600 },
      });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
      // Some load for the charts: a client session, and the history has a few seconds.
      const client = await connectClient(proxy.port);
      await client.waitFor("hello");
      for (let i = 0; i < 3; i++) proxy.history.sample(Date.now() + i);
      await page.goto(url);
      for (const id of ["sessions", "accepted", "bytes", "refused", "probes"]) {
        await page.locator(`#chart-${id} canvas`).waitFor({ timeout: 5000 });
      }
      expect(await page.locator(".u-title").allTextContents()).toEqual([
        "sessions",
        "new sessions per second",
        "bytes per second",
        "refused per second",
        "probe latency (ms)",
      ]);
      const history = await (await context.request.get(`${url}/v0/history`)).json();
      expect(history.samples.length).toBeGreaterThan(2);
      expect(history.samples.at(-1).sessions).toBeGreaterThanOrEqual(1);
      expect(history.marks.some((m: { kind: string }) => m.kind === "active")).toBe(true);
      await page.locator("#charts").screenshot({
        path: path.join(ROOT, "docs/dashboard-history.png"),
      });
      expect(errors).toEqual([]);
      client.socket.destroy();
      await context.close();
    },
    30_000,
  );

  test("the springboard lists this proxy with a link to its dashboard", async () => {
    const context = await browser.newContext({ httpCredentials: credentials });
    const page = await context.newPage();
    await page.goto(`${url}/springboard`);
    await page.locator("#proxies td", { hasText: "edge-1 (this one)" }).waitFor({ timeout: 5000 });
    expect(await page.locator("#proxies a").first().getAttribute("href")).toBe(`${url}/`);
    await context.close();
  });

  test("says clearly when it lost the connection", async () => {
    const context = await browser.newContext({ httpCredentials: credentials });
    const page = await context.newPage();
    await page.goto(url);
    await page.locator("#conn", { hasText: "live" }).waitFor({ timeout: 5000 });
    await server.close();
    await page.locator("#conn", { hasText: "connection lost" }).waitFor({ timeout: 5000 });
    await context.close();
  });
});
