import { formatHostPort, parseHostPort, portProblem } from "./address.ts";

/** One Galera node the proxy may route to, with the agent URL that says whether it may. */
export interface BackendSpec {
  name: string;
  host: string;
  port: number;
  /** Base URL of the node's health agent (galerad healthcheck, galera-healthcheck, clustercheck). */
  health: string;
  /** Candidates for the writer role are ordered by priority first, lower first; default 0. */
  priority?: number;
  /** False: never the active (writer) node; it may still serve the reader port. */
  writer?: boolean;
}

/** Highest `priority=` accepted. */
export const MAX_PRIORITY = 1_000_000;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** The port galera-healthcheck and `galerad healthcheck` listen on when none is given. */
export const DEFAULT_AGENT_PORT = 9200;

/**
 * Parses `NAME=HOST:PORT[,health=URL]`. Without `health=` the agent is assumed at
 * `http://HOST:9200`, where galera-healthcheck and `galerad healthcheck` listen by default.
 * Throws a TypeError whose message quotes the value and says what was expected.
 */
export function parseBackendSpec(text: string): BackendSpec {
  const expected =
    "expected NAME=HOST:PORT[,health=http://HOST:PORT][,priority=N][,writer=true|false]";
  const [head, ...options] = text.trim().split(",");
  const eq = head.indexOf("=");
  if (eq <= 0) throw new TypeError(`"${text}": ${expected}`);
  const name = head.slice(0, eq);
  if (!NAME.test(name)) {
    throw new TypeError(`"${text}": name "${name}" must be letters, digits, '.', '_' or '-'`);
  }
  const address = parseHostPort(head.slice(eq + 1), "");
  if (!address || address.host === "") {
    const problem = portProblem(head.slice(eq + 1));
    throw new TypeError(`"${text}": ${problem ? `${problem}, ` : ""}${expected}`);
  }
  if (address.port === 0) throw new TypeError(`"${text}": port 0, expected a port from 1 to 65535`);
  const health = `http://${formatHostPort({ host: address.host, port: DEFAULT_AGENT_PORT })}`;
  const spec: BackendSpec = { name, host: address.host, port: address.port, health };
  const seen = new Set<string>();
  for (const option of options) {
    const [key, ...rest] = option.split("=");
    const value = rest.join("=");
    if (seen.has(key)) throw new TypeError(`"${text}": "${key}" is given twice`);
    seen.add(key);
    if (key === "health" && value !== "") spec.health = validateHealthUrl(value, text);
    else if (key === "priority") {
      if (!/^\d{1,7}$/.test(value) || Number(value) > MAX_PRIORITY) {
        throw new TypeError(
          `"${text}": priority "${value}" must be an integer from 0 to ${MAX_PRIORITY} (lower is preferred)`,
        );
      }
      spec.priority = Number(value);
    } else if (key === "writer") {
      if (value !== "true" && value !== "false") {
        throw new TypeError(`"${text}": writer "${value}" must be true or false`);
      }
      spec.writer = value === "true";
    } else throw new TypeError(`"${text}": unknown option "${option}", ${expected}`);
  }
  return spec;
}

function validateHealthUrl(value: string, spec: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`"${spec}": health "${value}" is not a URL, expected http://HOST:PORT`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`"${spec}": health "${value}" must be an http:// or https:// URL`);
  }
  return value.replace(/\/+$/, "");
}
