import { describe, expect, test } from "bun:test";
import { PASSWORD_RULE, PEER_SECRET_RULE, secretProblem } from "../../src/core/secret_strength.ts";

describe("secretProblem()", () => {
  test("short, few distinct characters, or a repeated run: refused, without quoting it", () => {
    expect(secretProblem("x", PASSWORD_RULE)).toBe(
      "it has 1 characters: at least 8 are expected",
    );
    expect(secretProblem("aaaaaaaaaaaaaaaa", PEER_SECRET_RULE)).toBe(
      "it has only 1 distinct characters: at least 8 are expected",
    );
    expect(secretProblem("abcdefghabcdefghabcdefgh", PEER_SECRET_RULE)).toBe(
      "it repeats 8 characters over and over: use a random secret (openssl rand -base64 32)",
    );
  });

  test("a random secret passes", () => {
    expect(secretProblem("q3N8vZ1xLr0Tb7Kc2Wm9Yp", PEER_SECRET_RULE)).toBeNull();
    expect(secretProblem("hunter22x", PASSWORD_RULE)).toBeNull();
  });
});
