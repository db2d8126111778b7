/** Linux errno values an unreachable server shows, by number (Deno names only the number). */
const ERRNO: Record<string, string> = {
  "101": "ENETUNREACH",
  "104": "ECONNRESET",
  "110": "ETIMEDOUT",
  "111": "ECONNREFUSED",
  "113": "EHOSTUNREACH",
};

/**
 * The system error behind a failed `fetch` (ECONNREFUSED, ENOTFOUND, …), if it names one. Bun
 * and Node set `code` on the error or its cause (the cause's, the lower-level one, wins); Deno
 * throws a bare "fetch failed" whose cause's message ends "Connection refused (os error 111)",
 * or says "dns error".
 */
export function fetchErrorCode(error: unknown): string | undefined {
  const e = error as { code?: string; cause?: { code?: string; message?: string } };
  const named = e.cause?.code ?? e.code;
  if (named) return named;
  const detail = e.cause?.message ?? "";
  return ERRNO[/os error (\d+)/.exec(detail)?.[1] ?? ""] ??
    (/dns error/i.test(detail) ? "ENOTFOUND" : undefined);
}

/**
 * Says in a few words why a bounded `fetch` failed: "no answer within 3000ms" for a timeout,
 * else the system error code (ECONNREFUSED, ENOTFOUND, …) or the message.
 */
export function describeFetchError(error: unknown, timeoutMs: number): string {
  const e = error as { name?: string; message?: string };
  if (e.name === "TimeoutError") return `no answer within ${timeoutMs}ms`;
  return fetchErrorCode(error) ?? e.message ?? String(error);
}
