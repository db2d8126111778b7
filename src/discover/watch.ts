import type { Member, Registry, Role } from "./registry.ts";

/**
 * Follows a registry's membership by polling: `onChange` gets the new list whenever it differs
 * from the last one seen (the first successful read counts as a change); a failed read goes to
 * `onError` and the last known list stands. Retries back off from `intervalMs` to 30 s while the
 * registry fails.
 */
export function watchMembers(
  registry: Registry,
  role: Role | undefined,
  intervalMs: number,
  onChange: (members: Member[]) => void,
  onError: (error: Error) => void,
): () => void {
  let last: string | null = null;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let delay = intervalMs;
  const tick = async () => {
    try {
      const members = await registry.list(role);
      delay = intervalMs;
      const key = JSON.stringify(members);
      if (!stopped && key !== last) {
        last = key;
        onChange(members);
      }
    } catch (error) {
      delay = Math.min(30_000, delay * 2);
      if (!stopped) onError(error as Error);
    }
    if (!stopped) timer = setTimeout(tick, delay);
  };
  void tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
