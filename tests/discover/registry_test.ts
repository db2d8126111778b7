import { describe, expect, test } from "bun:test";
import { openRegistry } from "../../src/discover/open.ts";
import { gcommAddress, parseMember } from "../../src/discover/registry.ts";
import { formatMembers } from "../../src/cli/discover.ts";

describe("openRegistry()", () => {
  test("chooses the registry by URL", () => {
    expect(openRegistry("etcd://127.0.0.1:2379/prod").constructor.name).toBe("EtcdRegistry");
    expect(openRegistry("consul://127.0.0.1:8500").constructor.name).toBe("ConsulRegistry");
    expect(openRegistry("dns+srv://_galera._tcp.example.com").constructor.name).toBe("DnsRegistry");
    expect(openRegistry("dns://db.example.com:3306").constructor.name).toBe("DnsRegistry");
    expect(openRegistry("static:node/db0=10.0.0.5:3306").constructor.name).toBe("StaticRegistry");
  });
  test("rejects what it cannot use, quoting it", () => {
    expect(() => openRegistry("zookeeper://x:2181")).toThrow(
      '"zookeeper://x:2181": expected etcd://',
    );
    expect(() => openRegistry("static:db0=10.0.0.5:3306")).toThrow(
      '"db0=10.0.0.5:3306": expected ROLE/NAME=HOST:PORT',
    );
    expect(() => openRegistry("dns://db.example.com")).toThrow("dns:// needs NAME:PORT");
    expect(() => openRegistry("dns+srv://_x._tcp.example?role=db")).toThrow(
      "role must be node or proxy",
    );
    expect(() => openRegistry("dns://db.example.com:3306?server=ns1.example")).toThrow(
      "server must be an IP address with an optional port",
    );
    expect(() => openRegistry("dns://db.example.com:3306?server=10.0.0.2:70000")).toThrow(
      "server must be an IP address",
    );
    for (const server of ["10.0.0.2", "10.0.0.2:5353", "[fd00::53]:53", "fd00::53"]) {
      expect(openRegistry(`dns://db.example.com:3306?server=${server}`).constructor.name)
        .toBe("DnsRegistry");
    }
  });
  test("a static list is listed by role, sorted, and cannot be registered with", async () => {
    const r = openRegistry(
      "static:proxy/p1=10.0.0.11:10000,node/db1=10.0.0.6:3306,node/db0=10.0.0.5:3306",
    );
    expect((await r.list("node")).map((m) => m.name)).toEqual(["db0", "db1"]);
    expect((await r.list()).map((m) => m.role)).toEqual(["node", "node", "proxy"]);
    await expect(r.register({ role: "node", name: "x", address: "h:1" }, 1000, () => {})).rejects
      .toThrow("cannot be registered");
  });
});

describe("members", () => {
  const nodes = [
    { role: "node" as const, name: "db0", address: "10.0.0.5:3306" },
    {
      role: "node" as const,
      name: "db1",
      address: "10.0.0.6:3306",
      health: "http://10.0.0.6:9200",
    },
    { role: "proxy" as const, name: "p1", address: "10.0.0.11:10000" },
  ];
  test("gcomm lists the nodes' hosts, with a Galera port when given", () => {
    expect(gcommAddress(nodes)).toBe("gcomm://10.0.0.5,10.0.0.6");
    expect(gcommAddress(nodes, 4567)).toBe("gcomm://10.0.0.5:4567,10.0.0.6:4567");
  });
  test("formats as lines, JSON and a table", () => {
    expect(formatMembers(nodes, "lines")).toBe(
      "node db0 10.0.0.5:3306\nnode db1 10.0.0.6:3306 http://10.0.0.6:9200\nproxy p1 10.0.0.11:10000\n",
    );
    expect(JSON.parse(formatMembers(nodes, "json"))).toEqual(nodes);
    expect(formatMembers(nodes, "table").split("\n")[0]).toMatch(
      /^ROLE\s+NAME\s+ADDRESS\s+HEALTH\/API$/,
    );
  });
  test("parseMember refuses malformed entries", () => {
    expect(parseMember({ role: "node", name: "a", address: "h:1" })).toEqual({
      role: "node",
      name: "a",
      address: "h:1",
    });
    expect(parseMember({ role: "db", name: "a", address: "h:1" })).toBeNull();
    expect(parseMember({ role: "node", name: "a", address: "h" })).toBeNull();
    expect(parseMember("junk")).toBeNull();
    expect(parseMember({ role: "proxy", name: "p", address: "h:1" }, "node")).toBeNull();
  });
});
