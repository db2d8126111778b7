import { describe, expect, test } from "bun:test";
import { missingEnv } from "../../src/core/engine_env.ts";

describe("missingEnv", () => {
  const wanted = { BUN_JSC_useFTLJIT: "0" };

  test("asks for what is not set", () => {
    expect(missingEnv(wanted, { PATH: "/bin" })).toEqual({ BUN_JSC_useFTLJIT: "0" });
  });

  test("keeps the operator's value, whatever it is", () => {
    expect(missingEnv(wanted, { BUN_JSC_useFTLJIT: "1" })).toBeNull();
    expect(missingEnv(wanted, { BUN_JSC_useFTLJIT: "" })).toBeNull();
  });

  test("nothing wanted, nothing missing (engines without such settings)", () => {
    expect(missingEnv({}, {})).toBeNull();
  });

  test("only the missing ones of several", () => {
    expect(missingEnv({ A: "1", B: "2" }, { A: "9" })).toEqual({ B: "2" });
  });
});
