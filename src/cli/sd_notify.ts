import { getLogger } from "@logtape/logtape";
import { sdNotify } from "../runtime/sd_notify.ts";

/** Tells systemd (when it listens) a state change; a failure is logged at debug, never thrown. */
export function notify(state: string): void {
  sdNotify(state).catch((error) =>
    getLogger(["galerad", "cli"]).debug("sd_notify {state} failed: {error}", {
      state,
      error: String(error),
    })
  );
}
