import * as v from "valibot";
import { type HostPort, parseHostPort, portProblem } from "./address.ts";
import { type BackendSpec, parseBackendSpec } from "./backend_spec.ts";
import { splitCommandLine } from "./command_line.ts";
import { parseDuration } from "./duration.ts";
import { parsePeerSpec, type PeerAddress } from "./peer_spec.ts";

/**
 * Valibot field schemas shared by every subcommand's configuration. Each accepts what a flag,
 * an environment variable or a config file may hold (text, or the natural JSON/YAML type) and
 * yields the typed value; its message says what was expected.
 */

const text = v.union([v.string(), v.number()], "expected text");

/** A duration: "500ms", "2s", "1m" or a number of milliseconds. */
export const duration = (min = 0) =>
  v.pipe(
    text,
    v.transform((raw) => parseDuration(raw) ?? Number.NaN),
    v.check((ms) => !Number.isNaN(ms), "expected a duration like 500ms, 2s or 1m"),
    v.check((ms) => ms >= min, `expected a duration of at least ${min}ms`),
  );

/** A whole number within bounds, from text or a number. */
export const integer = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  v.pipe(
    text,
    v.transform((
      raw,
    ) => (typeof raw === "number" ? raw : /^-?\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN)),
    v.check(
      (n) => Number.isInteger(n) && n >= min && n <= max,
      max === Number.MAX_SAFE_INTEGER
        ? `expected a whole number of at least ${min}`
        : `expected a whole number from ${min} to ${max}`,
    ),
  );

/**
 * A thread count: "auto" (`auto`, resolved by the caller to one per CPU) or a whole number
 * from 1 to `max`. "auto" comes out as 0.
 */
export const threadCount = (max: number) =>
  v.pipe(
    text,
    v.transform((raw) => {
      if (typeof raw === "string" && raw.trim().toLowerCase() === "auto") return 0;
      const n = typeof raw === "number" ? raw : /^\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
      return Number.isInteger(n) && n >= 1 && n <= max ? n : Number.NaN;
    }),
    v.check((n) => !Number.isNaN(n), `expected auto or a whole number from 1 to ${max}`),
  );

/** `HOST:PORT` or `:PORT`; an empty host means all interfaces. */
export const hostPort = (defaultHost = "0.0.0.0") =>
  v.pipe(
    v.string("expected HOST:PORT"),
    v.rawTransform(({ dataset, addIssue, NEVER }): HostPort => {
      const parsed = parseHostPort(dataset.value, defaultHost);
      if (parsed) return parsed;
      const problem = portProblem(dataset.value);
      addIssue({
        message: `expected HOST:PORT, [IPv6]:PORT or :PORT${problem ? ` (${problem})` : ""}`,
      });
      return NEVER;
    }),
  );

/** A list of backends, each `NAME=HOST:PORT[,health=URL]` or an object with those keys. */
export const backendList = v.pipe(
  v.union(
    [v.string(), v.array(v.union([v.string(), v.record(v.string(), v.unknown())]))],
    "expected a list of NAME=HOST:PORT[,health=URL]",
  ),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const items = typeof dataset.value === "string" ? splitList(dataset.value) : dataset.value;
    const specs: BackendSpec[] = [];
    for (const item of items) {
      try {
        specs.push(parseBackendSpec(typeof item === "string" ? item : backendObjectToSpec(item)));
      } catch (error) {
        addIssue({ message: (error as Error).message });
        return NEVER;
      }
    }
    const seen = new Set<string>();
    for (const spec of specs) {
      if (seen.has(spec.name)) {
        addIssue({ message: `backend name "${spec.name}" is used twice; names must be unique` });
        return NEVER;
      }
      seen.add(spec.name);
    }
    return specs;
  }),
);

/** A list of peers, `NAME=HOST[:PORT]` separated by commas, spaces or `;` (or a list). */
export const peerList = v.pipe(
  v.union([v.string(), v.array(v.string())], "expected NAME=HOST[:PORT],…"),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const items = (typeof dataset.value === "string" ? [dataset.value] : dataset.value)
      .flatMap((item) => item.split(/[,;\s]+/)).filter((item) => item !== "");
    const peers: PeerAddress[] = [];
    for (const item of items) {
      try {
        const peer = parsePeerSpec(item);
        if (peers.some((p) => p.name === peer.name)) {
          addIssue({ message: `peer name "${peer.name}" is used twice; names must be unique` });
          return NEVER;
        }
        peers.push(peer);
      } catch (error) {
        addIssue({ message: (error as Error).message });
        return NEVER;
      }
    }
    return peers;
  }),
);

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** A name for this proxy or cluster: letters, digits, '.', '_' and '-'. */
export const name = v.pipe(
  v.string("expected a name"),
  v.regex(NAME, "expected letters, digits, '.', '_' or '-' (at most 63)"),
);

/** A list of names (proxies, say), separated by commas, spaces or `;` (or a list); no repeats. */
export const nameList = v.pipe(
  v.union([v.string(), v.array(v.string())], "expected NAME,NAME,…"),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const items = (typeof dataset.value === "string" ? [dataset.value] : dataset.value)
      .flatMap((item) => item.split(/[,;\s]+/)).filter((item) => item !== "");
    if (items.length === 0) {
      addIssue({ message: "expected at least one name" });
      return NEVER;
    }
    for (const [i, item] of items.entries()) {
      if (!NAME.test(item)) {
        addIssue({
          message:
            `"${item}" is not a name: expected letters, digits, '.', '_' or '-' (at most 63)`,
        });
        return NEVER;
      }
      if (items.indexOf(item) !== i) {
        addIssue({ message: `"${item}" is listed twice` });
        return NEVER;
      }
    }
    return items;
  }),
);

/** A boolean from a flag, "true"/"false"/"1"/"0"/"yes"/"no" text or JSON. */
export const boolean = v.pipe(
  v.union([v.boolean(), v.string(), v.number()]),
  v.transform((raw) => {
    if (typeof raw === "boolean") return raw;
    const t = String(raw).trim().toLowerCase();
    return ["true", "1", "yes", "on"].includes(t)
      ? true
      : ["false", "0", "no", "off"].includes(t)
      ? false
      : null;
  }),
  v.check((b) => b !== null, "expected true or false"),
  v.transform((b) => b!),
);

/** Non-empty text. */
export const nonEmpty = v.pipe(
  v.string("expected text"),
  v.minLength(1, "expected a non-empty value"),
);

/** Splits a repeatable option given once as text (environment variable): by `;` or whitespace. */
export function splitList(value: string): string[] {
  return value.split(/[;\s]+/).filter((item) => item !== "");
}

function backendObjectToSpec(item: Record<string, unknown>): string {
  const { name, host, port, health, priority, writer, ...rest } = item;
  const extra = Object.keys(rest);
  const keys = "name, host, port, health, priority, writer";
  if (extra.length > 0) {
    throw new TypeError(`unknown backend key "${extra[0]}", expected ${keys}`);
  }
  if (
    typeof name !== "string" || typeof host !== "string" ||
    (typeof port !== "number" && typeof port !== "string")
  ) {
    throw new TypeError(
      `backend ${JSON.stringify(item)}: expected {name, host, port, health?, priority?, writer?}`,
    );
  }
  const h = host.includes(":") ? `[${host}]` : host;
  const options = [
    typeof health === "string" ? `health=${health}` : null,
    priority !== undefined ? `priority=${priority}` : null,
    writer !== undefined ? `writer=${writer}` : null,
  ].filter((o) => o !== null);
  return [`${name}=${h}:${port}`, ...options].join(",");
}

/** An operator's command line, split into arguments (run without a shell). */
export const commandLine = v.pipe(
  v.string("expected a command line"),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    try {
      const argv = splitCommandLine(dataset.value);
      if (argv.length === 0) {
        addIssue({ message: "expected a command line, got nothing" });
        return NEVER;
      }
      return argv;
    } catch (error) {
      addIssue({ message: (error as Error).message });
      return NEVER;
    }
  }),
);
