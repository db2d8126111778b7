/**
 * Says in a few words why a bounded `fetch` failed: "no answer within 3000ms" for a timeout,
 * else the system error code (ECONNREFUSED, ENOTFOUND, …) or the message.
 */
export function describeFetchError(error: unknown, timeoutMs: number): string {
  const e = error as { name?: string; cause?: { code?: string }; code?: string; message?: string };
  if (e.name === "TimeoutError") return `no answer within ${timeoutMs}ms`;
  return e.cause?.code ?? e.code ?? e.message ?? String(error);
}
