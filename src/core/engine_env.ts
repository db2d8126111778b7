/**
 * Settings the JavaScript engine reads from the environment once, before any code runs: the
 * proxy gets them by starting itself again in place (the runtime's `restartWithEnv`), unless
 * the operator set them already.
 */

/** What `env` lacks of `wanted`, or null when nothing: a value already set is the operator's. */
export function missingEnv(
  wanted: Readonly<Record<string, string>>,
  env: Readonly<Record<string, string | undefined>>,
): Record<string, string> | null {
  const missing = Object.entries(wanted).filter(([name]) => env[name] === undefined);
  return missing.length > 0 ? Object.fromEntries(missing) : null;
}
