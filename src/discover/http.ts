import { describeFetchError } from "../core/fetch_error.ts";

/**
 * A bounded JSON request to a registry: throws an Error naming the registry and the failure
 * (unreachable, timeout, HTTP status with body, malformed JSON).
 */
export async function requestJson(
  what: string,
  url: string,
  init: { method?: string; body?: unknown; timeoutMs?: number; headers?: Record<string, string> } =
    {},
): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: init.method ?? "GET",
      headers: { "content-type": "application/json", ...init.headers },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.timeout(init.timeoutMs ?? 3000),
    });
  } catch (error) {
    const why = describeFetchError(error, init.timeoutMs ?? 3000);
    throw new Error(`${what}: ${why}`);
  }
  const text = await res.text();
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${text.trim().slice(0, 200)}`);
  if (text.trim() === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${what}: the answer is not JSON: ${text.trim().slice(0, 100)}`);
  }
}
