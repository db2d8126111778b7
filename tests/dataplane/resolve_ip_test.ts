import { describe, expect, test } from "bun:test";
import { ipLiteral, resolveIp } from "../../src/dataplane/resolve_ip.ts";

describe("ipLiteral and resolveIp: threads dial addresses, not names", () => {
  test("an address is itself, IPv6 without its brackets", () => {
    expect(ipLiteral("10.0.0.7")).toBe("10.0.0.7");
    expect(ipLiteral("::1")).toBe("::1");
    expect(ipLiteral("[fd00::2]")).toBe("fd00::2");
  });

  test("a name is not an address", () => {
    expect(ipLiteral("db1.example")).toBeNull();
    expect(ipLiteral("10.0.0.256")).toBeNull();
    expect(ipLiteral("")).toBeNull();
  });

  test("a name is looked up, an address is not", async () => {
    expect(await resolveIp("[::1]")).toBe("::1");
    expect(["127.0.0.1", "::1"]).toContain(await resolveIp("localhost"));
  });
});
