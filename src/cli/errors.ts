/** A usage or configuration error: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A runtime failure the operator can act on (port in use, agent down): one line, exit 1. */
export class RuntimeFailure extends Error {
  override name = "RuntimeFailure";
}
