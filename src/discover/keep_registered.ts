import { getLogger } from "@logtape/logtape";
import type { Member, Registry } from "./registry.ts";

const log = getLogger(["galerad", "discover"]);

/**
 * Registers `member` and keeps it registered, logging renewal failures; the first attempt's
 * failure rejects with an Error naming the member (the caller decides the exit).
 */
export async function keepRegistered(registry: Registry, member: Member, ttlMs: number) {
  let registration: Awaited<ReturnType<Registry["register"]>>;
  try {
    registration = await registry.register(
      member,
      ttlMs,
      (error) => log.warn("registration renewal failed: {error}", { error: error.message }),
    );
  } catch (error) {
    throw new Error(`cannot register ${member.role} ${member.name}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  log.info("registered {role} {name} ({address}) in {registry}", {
    ...member,
    registry: registry.url,
  });
  return {
    close: async () => {
      await registration.close().catch((error) =>
        log.warn("could not deregister: {error}", { error: String(error) })
      );
      log.info("deregistered {role} {name}", { ...member });
    },
  };
}
