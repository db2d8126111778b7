import { describe, expect, test } from "bun:test";
import { crossSiteRefusal, type RequestSignals } from "../../src/core/cross_site.ts";

const req = (over: Partial<RequestSignals>): RequestSignals => ({
  method: "POST",
  host: "10.0.0.5:8080",
  origin: null,
  secFetchSite: null,
  contentType: "application/json",
  hasBody: true,
  requestHeader: null,
  ...over,
});

describe("crossSiteRefusal()", () => {
  test("reads always pass, whatever they carry", () => {
    expect(crossSiteRefusal(req({ method: "GET", secFetchSite: "cross-site" }))).toBeNull();
    expect(crossSiteRefusal(req({ method: "HEAD", origin: "https://evil.example" }))).toBeNull();
  });

  test("a JSON body from this origin, or from no browser at all, passes", () => {
    expect(crossSiteRefusal(req({}))).toBeNull();
    expect(crossSiteRefusal(req({ origin: "http://10.0.0.5:8080", secFetchSite: "same-origin" })))
      .toBeNull();
    expect(crossSiteRefusal(req({ contentType: "application/json; charset=utf-8" }))).toBeNull();
  });

  test("another site by Sec-Fetch-Site or Origin: 403 saying which", () => {
    expect(crossSiteRefusal(req({ secFetchSite: "cross-site" }))).toEqual({
      status: 403,
      message: "cross-site request refused (Sec-Fetch-Site: cross-site)",
    });
    expect(crossSiteRefusal(req({ secFetchSite: "same-site" }))?.status).toBe(403);
    expect(crossSiteRefusal(req({ origin: "http://10.0.0.5:9999" }))).toEqual({
      status: 403,
      message:
        'cross-site request refused (Origin "http://10.0.0.5:9999" is not this server, "10.0.0.5:8080")',
    });
    expect(crossSiteRefusal(req({ origin: "null" }))?.status).toBe(403);
  });

  test("form encodings are 415; a bodiless change needs the custom header", () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]) {
      expect(crossSiteRefusal(req({ contentType: type }))).toEqual({
        status: 415,
        message:
          `a request body must be Content-Type: application/json: current value is "${type}"`,
      });
    }
    expect(crossSiteRefusal(req({ contentType: null, hasBody: true }))?.status).toBe(415);
    expect(crossSiteRefusal(req({ contentType: null, hasBody: false }))).toEqual({
      status: 403,
      message:
        "a request without a body needs the header X-Galerad-Request: 1 (or Content-Type: application/json)",
    });
    expect(crossSiteRefusal(req({ contentType: null, hasBody: false, requestHeader: "1" })))
      .toBeNull();
  });
});
