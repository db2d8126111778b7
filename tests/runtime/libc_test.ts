import { describe, expect, test } from "bun:test";
import { parseIp } from "../../src/core/address.ts";
import {
  epollDataOffset,
  epollEventSize,
  errnoName,
  readSockaddr,
  sockaddr,
} from "../../src/runtime/libc.ts";

describe("parseIp()", () => {
  test("reads IPv4 and IPv6 literals into their bytes", () => {
    expect([...parseIp("10.0.0.254")!]).toEqual([10, 0, 0, 254]);
    expect([...parseIp("::1")!]).toEqual([...new Array(15).fill(0), 1]);
    expect([...parseIp("[fe80::1:2]")!]).toEqual([
      0xfe,
      0x80,
      ...new Array(10).fill(0),
      0,
      1,
      0,
      2,
    ]);
    expect([...parseIp("::ffff:127.0.0.1")!].slice(10)).toEqual([0xff, 0xff, 127, 0, 0, 1]);
    expect(parseIp("2001:db8:0:0:0:0:0:1")!.length).toBe(16);
  });

  test("refuses names and malformed literals", () => {
    for (
      const bad of [
        "localhost",
        "256.0.0.1",
        "1.2.3",
        "1::2::3",
        "1:2:3:4:5:6:7:8:9",
        "fe80::1%eth0",
        "",
      ]
    ) {
      expect(parseIp(bad)).toBeNull();
    }
  });
});

describe("sockaddr() and readSockaddr()", () => {
  test("an IPv4 address round-trips with its port in network order", () => {
    const raw = sockaddr("192.168.1.20", 3306)!;
    expect(raw.length).toBe(16);
    expect([raw[2], raw[3]]).toEqual([0x0c, 0xea]);
    expect(readSockaddr(raw)).toEqual({ address: "192.168.1.20", port: 3306 });
  });

  test("IPv6 comes back compressed, v4-mapped as ::ffff:a.b.c.d", () => {
    expect(readSockaddr(sockaddr("2001:db8:0:0:1:0:0:1", 1)!).address).toBe("2001:db8::1:0:0:1");
    expect(readSockaddr(sockaddr("::", 2)!).address).toBe("::");
    expect(readSockaddr(sockaddr("1:2:3:4:5:6:7:8", 3)!).address).toBe("1:2:3:4:5:6:7:8");
    expect(readSockaddr(sockaddr("::ffff:10.1.2.3", 4)!)).toEqual({
      address: "::ffff:10.1.2.3",
      port: 4,
    });
  });

  test("a name is not an address", () => {
    expect(sockaddr("db1.example", 3306)).toBeNull();
  });
});

describe("epoll_event layout and errno names", () => {
  test("packed on x86_64, aligned elsewhere", () => {
    expect([epollEventSize("x64"), epollDataOffset("x64")]).toEqual([12, 4]);
    expect([epollEventSize("x86_64"), epollDataOffset("x86_64")]).toEqual([12, 4]);
    expect([epollEventSize("arm64"), epollDataOffset("arm64")]).toEqual([16, 8]);
  });

  test("names the errors a proxy reports, numbers the rest", () => {
    expect(errnoName(111)).toBe("ECONNREFUSED");
    expect(errnoName(24)).toBe("EMFILE");
    expect(errnoName(4242)).toBe("errno 4242");
  });
});
