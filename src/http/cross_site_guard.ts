import { getLogger } from "@logtape/logtape";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { crossSiteRefusal, REQUEST_HEADER } from "../core/cross_site.ts";

const log = getLogger(["galerad", "http"]);

/** Refuses state changes a page of another site could have sent (core/cross_site.ts), logged. */
export function crossSiteGuard(): MiddlewareHandler {
  return async (c, next) => {
    const h = c.req.raw.headers;
    const length = h.get("content-length");
    const refusal = crossSiteRefusal({
      method: c.req.method,
      host: h.get("host"),
      origin: h.get("origin"),
      secFetchSite: h.get("sec-fetch-site"),
      contentType: h.get("content-type"),
      hasBody: (length !== null && length !== "0") || h.get("transfer-encoding") !== null,
      requestHeader: h.get(REQUEST_HEADER),
    });
    if (refusal) {
      log.warn("refused {method} {path}: {reason}", {
        method: c.req.method,
        path: new URL(c.req.url).pathname,
        reason: refusal.message,
        origin: h.get("origin"),
      });
      return c.json({ error: refusal.message }, refusal.status);
    }
    await next();
  };
}

/**
 * Headers every answer carries: no sniffing, no framing, no referrer; for pages a policy that
 * runs only their own inline script and style, by hash.
 */
export function securityHeaders(
  inline: () => Promise<{ scripts: string[]; styles: string[] }> = () =>
    Promise.resolve({ scripts: [], styles: [] }),
): MiddlewareHandler {
  return async (c, next) => {
    await next();
    const headers = c.res.headers;
    headers.set("X-Content-Type-Options", "nosniff");
    headers.set("X-Frame-Options", "DENY");
    headers.set("Referrer-Policy", "no-referrer");
    if (headers.get("content-type")?.startsWith("text/html")) {
      const { scripts, styles } = await inline();
      // This server's own files (the chart library) and its inline script and style by hash.
      const list = (hs: string[]) => ["'self'", ...hs.map((h) => `'${h}'`)].join(" ");
      headers.set(
        "Content-Security-Policy",
        `default-src 'none'; script-src ${list(scripts)}; style-src ${list(styles)}; ` +
          "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; " +
          "frame-ancestors 'none'",
      );
    } else headers.set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
  };
}

/** Largest request body read, in bytes: every route takes a small JSON object at most. */
export const MAX_BODY_BYTES = 64 * 1024;

/** Refuses a body over MAX_BODY_BYTES with 413 before it is read whole. */
export function bodyCap(): MiddlewareHandler {
  return bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: (c) => c.json({ error: `request body is larger than ${MAX_BODY_BYTES} bytes` }, 413),
  });
}
