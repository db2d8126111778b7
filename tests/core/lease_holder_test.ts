import { describe, expect, test } from "bun:test";
import { forgetGrant, recordAnswer, startHolder } from "../../src/core/lease_holder.ts";
import { emptyRegister, type Register } from "../../src/core/register.ts";

const timers = { leaseMs: 2000, marginMs: 200, guardMs: 300 };
const on = (active: string): Register => ({
  ...emptyRegister("c"),
  epoch: 2,
  proposer: "p1",
  incarnation: "i1",
  active,
});

describe("recordAnswer: a late grant replaces the refusal that waited for it", () => {
  const holder = () => {
    const h = startHolder("life");
    return { ...h, lastT: 5, asked: { v1: { last: 5, lastNull: 5 } } };
  };
  const answer = (node: string | null, wait?: boolean) => ({
    t: 5,
    incarnation: "life",
    node,
    lease: 2000,
    register: on("db1"),
    why: "test",
    ...(wait ? { wait } : {}),
  });

  test("the grant to the same request is kept after a refusal that said wait", () => {
    const waited = recordAnswer(holder(), "v1", timers, answer(null, true))!;
    expect(recordAnswer(waited, "v1", timers, answer("db1"))?.grants.v1.node).toBe("db1");
  });

  test("but not after a plain refusal, nor a second copy of a grant", () => {
    const refused = recordAnswer(holder(), "v1", timers, answer(null))!;
    expect(recordAnswer(refused, "v1", timers, answer("db1"))).toBeNull();
    const granted = recordAnswer(holder(), "v1", timers, answer("db1"))!;
    expect(recordAnswer(granted, "v1", timers, answer("db1"))).toBeNull();
    expect(recordAnswer(granted, "v1", timers, answer(null, true))).toBeNull();
  });
});

describe("forgetGrant", () => {
  test("drops one voter's grant and keeps the others; forgetting nothing changes nothing", () => {
    const h = { ...startHolder("life"), grants: { v1: grantOf("db0"), v2: grantOf("db0") } };
    const after = forgetGrant(h, "v1");
    expect(Object.keys(after.grants)).toEqual(["v2"]);
    expect(forgetGrant(after, "v1")).toBe(after);
  });
});

function grantOf(node: string) {
  return { t: 1, node, lease: 2000, register: on(node), why: "test" };
}
