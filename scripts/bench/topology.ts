/**
 * The topology the benchmarks share: HAProxy in front of Galera nodes (its configuration and its
 * process) and the galerad agents of the lab's nodes. Processes, stand-in nodes, the Galera lab
 * and which node a session reached (`whichPort`) are in scripts/lab/.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { waitFor } from "../lab/fixtures.ts";
import { type Daemon, startDaemon } from "../lab/spawn.ts";

/** One server line of an HAProxy backend, checked over HTTP at its agent's port. */
export interface HaproxyServer {
  name: string;
  host: string;
  port: number;
  /** The agent's port (`check port`); unchecked without it. */
  checkPort?: number;
  /** Taken only when every server before it is down (HAProxy's single-writer idiom). */
  backup?: boolean;
  /** More server keywords, as HAProxy spells them. */
  extra?: string;
}

export interface HaproxyOptions {
  /** `HOST:PORT` of the frontend. */
  bind: string;
  maxconn: number;
  servers: HaproxyServer[];
  /** Health check timers of every checked server. */
  check?: { inter: string | number; rise: number; fall: number };
  /** `balance` of the backend; HAProxy's default (roundrobin) without it. */
  balance?: string;
  /** Lines added to the global, defaults and backend sections, and whole sections after them. */
  global?: string[];
  defaults?: string[];
  backend?: string[];
  sections?: string;
}

/**
 * HAProxy in TCP mode as the benchmarks run it: one frontend, one backend checked with `GET /`
 * on the agents, sessions shut down on a server that goes down.
 */
export function haproxyConfig(o: HaproxyOptions): string {
  const servers = o.servers.map((s) => {
    const check = s.checkPort === undefined || !o.check
      ? ""
      : ` check port ${s.checkPort} inter ${o.check.inter} rise ${o.check.rise} fall ${o.check.fall}`;
    return `  server ${s.name} ${s.host}:${s.port}${check}${s.extra ? ` ${s.extra}` : ""}${
      s.backup ? " backup" : ""
    } on-marked-down shutdown-sessions`;
  });
  const lines = (more: string[] | undefined) => (more ?? []).map((l) => `  ${l}\n`).join("");
  return `global
  maxconn ${o.maxconn}
${lines(o.global)}defaults
  mode tcp
  timeout connect 2s
  timeout client 1h
  timeout server 1h
${lines(o.defaults)}frontend galera_in
  bind ${o.bind}
  default_backend galera_nodes
backend galera_nodes
${o.balance ? `  balance ${o.balance}\n` : ""}${lines(o.backend)}${
    o.check ? "  option httpchk GET /\n" : ""
  }${servers.join("\n")}
${o.sections ?? ""}`;
}

/**
 * The lab's nodes as HAProxy servers, the first one active and the others backups, each checked
 * at `agentPort + i`.
 */
export function labServers(
  host: string,
  ports: number[],
  agentPort: number,
  backups = true,
): HaproxyServer[] {
  return ports.map((port, i) => ({
    name: `node${i}`,
    host,
    port,
    checkPort: agentPort + i,
    backup: backups && i > 0,
  }));
}

/** Writes `config` to `file` and runs HAProxy on it in the foreground (`-db`), optionally in a namespace. */
export function startHaproxy(file: string, config: string, prefix: string[] = []): ChildProcess {
  writeFileSync(file, config);
  const command = [...prefix, "haproxy", "-db", "-f", file];
  return spawn(command[0], command.slice(1), { stdio: "ignore" });
}

/**
 * One galerad agent per lab node, the i-th on `listen(i)` reading `socket(i)`, with `extra(i)`
 * flags; resolves once each answers 200 on `url(i)` (from here, or through `probe`).
 */
export async function startLabAgents(o: {
  count: number;
  listen: (i: number) => string;
  socket: (i: number) => string;
  url: (i: number) => string;
  command: string[];
  extra?: (i: number) => string[];
  env?: Record<string, string>;
  /** Asks the agent's URL some other way (from a namespace); true when it answered 200. */
  probe?: (url: string) => Promise<boolean> | boolean;
}): Promise<Daemon[]> {
  const agents: Daemon[] = [];
  for (let i = 0; i < o.count; i++) {
    agents.push(startDaemon([
      "healthcheck",
      "--listen",
      o.listen(i),
      "--mysql-socket",
      o.socket(i),
      ...(o.extra?.(i) ?? []),
    ], { command: o.command, env: o.env }));
  }
  const healthy = o.probe ??
    (async (url: string) => (await fetch(url).catch(() => null))?.status === 200);
  await waitFor("agents healthy", async () => {
    for (let i = 0; i < o.count; i++) if (!(await healthy(o.url(i)))) return false;
    return true;
  }, 60_000);
  return agents;
}

/** The lab's three agents on this host: agent i on 127.0.0.1:`port + i`, reading node i. */
export function startLocalAgents(
  lab: { socket(i: number): string },
  port: number,
  command: string[],
  more: { extra?: (i: number) => string[]; env?: Record<string, string> } = {},
): Promise<Daemon[]> {
  return startLabAgents({
    count: 3,
    listen: (i) => `127.0.0.1:${port + i}`,
    socket: (i) => lab.socket(i),
    url: (i) => `http://127.0.0.1:${port + i}/`,
    command,
    ...more,
  });
}
