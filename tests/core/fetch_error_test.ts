import { describe, expect, test } from "bun:test";
import { describeFetchError, fetchErrorCode } from "../../src/core/fetch_error.ts";

/** What Deno throws: a bare "fetch failed" with the reason in its cause's message. */
function denoError(detail: string): Error {
  return new TypeError("fetch failed", { cause: new Error(detail) });
}

describe("fetch failures", () => {
  test("the system error comes from code, the cause's code, or Deno's cause message", () => {
    expect(fetchErrorCode(Object.assign(new Error("x"), { code: "ECONNREFUSED" }))).toBe(
      "ECONNREFUSED",
    );
    expect(fetchErrorCode(new TypeError("fetch failed", { cause: { code: "ENOTFOUND" } })))
      .toBe("ENOTFOUND");
    const refused = "error sending request for url (http://127.0.0.1:19999/): client error " +
      "(Connect): tcp connect error: Connection refused (os error 111)";
    expect(fetchErrorCode(denoError(refused))).toBe("ECONNREFUSED");
    expect(fetchErrorCode(denoError("tcp connect error: No route to host (os error 113)")))
      .toBe("EHOSTUNREACH");
    expect(fetchErrorCode(denoError("client error (Connect): dns error: failed to lookup")))
      .toBe("ENOTFOUND");
    expect(fetchErrorCode(denoError("something else (os error 999)"))).toBeUndefined();
    expect(fetchErrorCode("a string")).toBeUndefined();
  });

  test("describeFetchError: timeouts by name, else the code, else the message", () => {
    const timeout = Object.assign(new Error("The operation timed out."), { name: "TimeoutError" });
    expect(describeFetchError(timeout, 3000)).toBe("no answer within 3000ms");
    expect(describeFetchError(denoError("Connection refused (os error 111)"), 3000)).toBe(
      "ECONNREFUSED",
    );
    expect(describeFetchError(new Error("unexpected end"), 3000)).toBe("unexpected end");
  });
});
