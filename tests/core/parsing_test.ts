import { describe, expect, test } from "bun:test";
import { parseHostPort, portProblem } from "../../src/core/address.ts";
import { interpretStatusCode, interpretStatusJson } from "../../src/core/agent_status.ts";
import { parseBackendSpec } from "../../src/core/backend_spec.ts";
import { parseDuration } from "../../src/core/duration.ts";
import { mysqlErrorPacket } from "../../src/core/mysql_packet.ts";

describe("parseDuration()", () => {
  test("reads units and bare milliseconds", () => {
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("2s")).toBe(2000);
    expect(parseDuration("1.5s")).toBe(1500);
    expect(parseDuration("1m")).toBe(60_000);
    expect(parseDuration("250")).toBe(250);
    expect(parseDuration(42)).toBe(42);
  });
  test("returns undefined for anything else", () => {
    for (const bad of ["", "abc", "-1s", "1d", "1 s2", "s"]) {
      expect(parseDuration(bad)).toBeUndefined();
    }
    expect(parseDuration(-5)).toBeUndefined();
  });
});

describe("parseHostPort()", () => {
  test("reads host:port, :port and bracketed IPv6", () => {
    expect(parseHostPort("10.0.0.5:3306")).toEqual({ host: "10.0.0.5", port: 3306 });
    expect(parseHostPort(":8080")).toEqual({ host: "0.0.0.0", port: 8080 });
    expect(parseHostPort("[::1]:3306")).toEqual({ host: "::1", port: 3306 });
  });
  test("rejects what is not an endpoint", () => {
    for (const bad of ["3306", "host", "host:", "host:99999", "::1:3306", "a b:1"]) {
      expect(parseHostPort(bad)).toBeUndefined();
    }
  });
});

describe("parseBackendSpec()", () => {
  test("defaults the agent to port 9200 on the same host", () => {
    expect(parseBackendSpec("db0=10.0.0.5:3306")).toEqual({
      name: "db0",
      host: "10.0.0.5",
      port: 3306,
      health: "http://10.0.0.5:9200",
    });
  });
  test("takes an explicit health URL", () => {
    expect(parseBackendSpec("db1=127.0.0.1:3307,health=http://127.0.0.1:9201/").health).toBe(
      "http://127.0.0.1:9201",
    );
  });
  test("rejects malformed specs with a message quoting the value", () => {
    expect(() => parseBackendSpec("10.0.0.5:3306")).toThrow(
      '"10.0.0.5:3306": expected NAME=HOST:PORT',
    );
    expect(() => parseBackendSpec("db0=host")).toThrow("expected NAME=HOST:PORT");
    expect(() => parseBackendSpec("db0=h:1,health=ftp://x")).toThrow("must be an http://");
    expect(() => parseBackendSpec("db0=h:1,weight=3")).toThrow('unknown option "weight=3"');
    expect(() => parseBackendSpec("d b=h:1")).toThrow("must be letters");
  });
  test("says when it is the port that is wrong", () => {
    expect(() => parseBackendSpec("db0=10.0.0.5:99999")).toThrow(
      '"db0=10.0.0.5:99999": port 99999 is above 65535, expected NAME=HOST:PORT',
    );
    expect(() => parseBackendSpec("db0=10.0.0.5:0")).toThrow(
      '"db0=10.0.0.5:0": port 0, expected a port from 1 to 65535',
    );
  });
});

describe("parseBackendSpec() priority and writer", () => {
  test("priority=N and writer=true|false, in any order", () => {
    expect(parseBackendSpec("db2=10.0.0.7:3306,writer=false,priority=3")).toEqual({
      name: "db2",
      host: "10.0.0.7",
      port: 3306,
      health: "http://10.0.0.7:9200",
      priority: 3,
      writer: false,
    });
  });
  test("bad values quote the spec and say what is expected", () => {
    expect(() => parseBackendSpec("db0=h:1,priority=-1")).toThrow(
      '"db0=h:1,priority=-1": priority "-1" must be an integer from 0 to 1000000 (lower is preferred)',
    );
    expect(() => parseBackendSpec("db0=h:1,priority=high")).toThrow('priority "high"');
    expect(() => parseBackendSpec("db0=h:1,writer=no")).toThrow(
      '"db0=h:1,writer=no": writer "no" must be true or false',
    );
    expect(() => parseBackendSpec("db0=h:1,priority=1,priority=2")).toThrow(
      '"priority" is given twice',
    );
  });
});

describe("portProblem()", () => {
  test("names what is wrong with the port, and nothing when the shape is wrong", () => {
    expect(portProblem("127.0.0.1:99999")).toBe("port 99999 is above 65535");
    expect(portProblem("127.0.0.1:-1")).toBe('port "-1" is not a number');
    expect(portProblem("db1:")).toBe("the port is missing");
    expect(portProblem("[::1]:70000")).toBe("port 70000 is above 65535");
    expect(portProblem("foo")).toBeUndefined();
    expect(portProblem("::1")).toBeUndefined(); // an IPv6 literal, not HOST:PORT
    expect(portProblem("127.0.0.1:3306")).toBeUndefined();
  });
});

describe("agent answers", () => {
  test("status JSON with healthy and index", () => {
    const r = interpretStatusJson(
      200,
      '{"healthy":true,"wsrep_local_index":2,"wsrep_local_state":4,"wsrep_local_state_comment":"Synced"}',
      3,
    );
    expect(r).toMatchObject({
      ok: true,
      wsrepLocalIndex: 2,
      wsrepLocalState: 4,
      wsrepLocalStateComment: "Synced",
      latencyMs: 3,
    });
  });
  test("status JSON carrying the agent's reason", () => {
    const r = interpretStatusJson(503, '{"healthy":false,"reason":"wsrep_desync is ON"}', 1);
    expect(r).toMatchObject({ ok: false, reason: "wsrep_desync is ON" });
  });
  test("malformed JSON or a missing healthy flag is a failed probe", () => {
    expect(interpretStatusJson(200, "{oops", 1)).toMatchObject({
      ok: false,
      reason: "agent answered 200 with malformed JSON",
    });
    expect(interpretStatusJson(200, '{"healthy":"yes"}', 1).ok).toBe(false);
    expect(interpretStatusJson(200, "null", 1).ok).toBe(false);
  });
  test("clustercheck status codes", () => {
    expect(interpretStatusCode(200, "Percona XtraDB Cluster Node is synced.\r\n", 1)).toMatchObject(
      { ok: true },
    );
    expect(interpretStatusCode(503, "\nnot synced\n", 1)).toMatchObject({
      ok: false,
      reason: "agent answered 503: not synced",
    });
    expect(interpretStatusCode(500, "", 1).ok).toBe(false);
  });
});

describe("mysqlErrorPacket()", () => {
  test("builds an ERR packet with sequence 0, code, SQLSTATE and message", () => {
    const p = mysqlErrorPacket(1105, "08004", "galerad: no node");
    const length = p[0] | (p[1] << 8) | (p[2] << 16);
    expect(length).toBe(p.length - 4);
    expect(p[3]).toBe(0);
    expect(p[4]).toBe(0xff);
    expect(p[5] | (p[6] << 8)).toBe(1105);
    expect(new TextDecoder().decode(p.subarray(7))).toBe("#08004galerad: no node");
  });
});
