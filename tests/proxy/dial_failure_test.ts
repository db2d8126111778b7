import { describe, expect, test } from "bun:test";
import { dialRefusal } from "../../src/proxy/dial_failure.ts";

describe("dialRefusal()", () => {
  test("out of descriptors is its own reason, not the node's", () => {
    for (const code of ["EMFILE", "ENFILE"]) {
      expect(dialRefusal("db0", "active", new Error(`connect ${code}: too many open files`)))
        .toEqual({
          reason: "fd_limit",
          message: `the proxy is out of file descriptors (${code}); try again later`,
        });
    }
  });

  test("anything else is the node being unreachable, named", () => {
    expect(dialRefusal("db1", "reader", new Error("connect ECONNREFUSED 10.0.0.6:3306"))).toEqual({
      reason: "backend_unreachable",
      message: "cannot reach reader node db1: connect ECONNREFUSED 10.0.0.6:3306",
    });
  });
});
