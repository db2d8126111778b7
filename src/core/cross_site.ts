/** The parts of a request that say whether a browser sent it from another site. */
export interface RequestSignals {
  method: string;
  /** The Host header: this server as the client addressed it. */
  host: string | null;
  origin: string | null;
  secFetchSite: string | null;
  contentType: string | null;
  /** Whether the request carries a body (Content-Length > 0 or chunked). */
  hasBody: boolean;
  /** The value of REQUEST_HEADER, which a page of another site cannot send without CORS. */
  requestHeader: string | null;
}

/** The header the dashboard (and galerad's own clients) send on bodiless state changes. */
export const REQUEST_HEADER = "X-Galerad-Request";

export interface CrossSiteRefusal {
  status: 403 | 415;
  message: string;
}

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Whether a state-changing request may have come from a page of another site (a form, a
 * no-cors fetch) riding on the browser's stored credentials. Such pages can neither send a JSON
 * body nor a custom header without a CORS preflight, which nothing here answers. So: no
 * cross-site Origin or Sec-Fetch-Site; a Content-Type only application/json; and without one,
 * no body and REQUEST_HEADER. Reads (GET, HEAD) are never refused. Returns null when it may pass.
 */
export function crossSiteRefusal(r: RequestSignals): CrossSiteRefusal | null {
  if (SAFE.has(r.method.toUpperCase())) return null;
  const site = r.secFetchSite?.toLowerCase() ?? null;
  if (site !== null && site !== "same-origin" && site !== "none") {
    return { status: 403, message: `cross-site request refused (Sec-Fetch-Site: ${site})` };
  }
  if (r.origin !== null && !sameHost(r.origin, r.host)) {
    return {
      status: 403,
      message: `cross-site request refused (Origin ${JSON.stringify(r.origin.slice(0, 200))} ` +
        `is not this server, ${JSON.stringify(r.host ?? "")})`,
    };
  }
  if (r.contentType !== null) {
    const type = r.contentType.split(";")[0].trim().toLowerCase();
    if (type === "application/json") return null;
    return {
      status: 415,
      message: `a request body must be Content-Type: application/json: current value is ${
        JSON.stringify(r.contentType.slice(0, 100))
      }`,
    };
  }
  if (r.hasBody) {
    return { status: 415, message: "a request body must be Content-Type: application/json" };
  }
  if (r.requestHeader === null) {
    return {
      status: 403,
      message:
        `a request without a body needs the header ${REQUEST_HEADER}: 1 (or Content-Type: application/json)`,
    };
  }
  return null;
}

function sameHost(origin: string, host: string | null): boolean {
  if (host === null) return false;
  try {
    return new URL(origin).host.toLowerCase() === host.toLowerCase();
  } catch {
    return false; // "null" (a sandboxed page, a file) or garbage
  }
}
