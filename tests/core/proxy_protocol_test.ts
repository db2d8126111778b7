import { describe, expect, test } from "bun:test";
import { proxyV2Header } from "../../src/core/proxy_protocol.ts";

const SIG = "0d0a0d0a000d0a515549540a";
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

describe("proxyV2Header()", () => {
  test("IPv4: PROXY command, TCP4, 12 address bytes", () => {
    const h = proxyV2Header({
      sourceAddress: "192.168.0.1",
      sourcePort: 56324,
      destinationAddress: "10.0.0.5",
      destinationPort: 3306,
    });
    expect(hex(h)).toBe(SIG + "21" + "11" + "000c" + "c0a80001" + "0a000005" + "dc04" + "0cea");
  });
  test("IPv4-mapped IPv6 addresses go as IPv4", () => {
    const h = proxyV2Header({
      sourceAddress: "::ffff:127.0.0.5",
      sourcePort: 1,
      destinationAddress: "::ffff:127.0.0.1",
      destinationPort: 2,
    });
    expect(hex(h)).toBe(SIG + "2111000c" + "7f000005" + "7f000001" + "0001" + "0002");
  });
  test("IPv6: TCP6 with 36 address bytes", () => {
    const h = proxyV2Header({
      sourceAddress: "2001:db8::1",
      sourcePort: 10,
      destinationAddress: "::1",
      destinationPort: 3306,
    });
    expect(hex(h)).toBe(
      SIG + "21" + "21" + "0024" + "20010db8000000000000000000000001" +
        "00000000000000000000000000000001" + "000a" + "0cea",
    );
  });
  test("unreadable addresses give a LOCAL header", () => {
    expect(
      hex(
        proxyV2Header({
          sourceAddress: "",
          sourcePort: 0,
          destinationAddress: "x",
          destinationPort: 0,
        }),
      ),
    ).toBe(SIG + "20000000");
  });
});
