import { Command } from "@commander-js/extra-typings";
import { getLogger } from "@logtape/logtape";
import { randomBytes } from "node:crypto";
import * as v from "valibot";
import { serveHttp } from "#runtime";
import {
  backendList,
  duration,
  hostPort,
  integer,
  nonEmpty,
  splitList,
} from "../core/config_fields.ts";
import { createApi, createHealthApp } from "../proxy/api.ts";
import { Proxy } from "../proxy/proxy.ts";
import {
  applyLogging,
  bindError,
  commonFields,
  onShutdownSignal,
  opt,
  readSecretFile,
  withCommonOptions,
} from "./common.ts";
import { RuntimeFailure, UsageError } from "./errors.ts";
import { resolveOptions } from "./resolve_options.ts";

const log = getLogger(["galerad", "cli"]);

const schema = v.object({
  listen: hostPort(),
  backend: backendList,
  apiListen: hostPort(),
  healthListen: hostPort(),
  apiUser: nonEmpty,
  apiPassword: v.optional(v.string()),
  apiPasswordFile: v.optional(v.string()),
  interval: duration(10),
  timeout: duration(10),
  rise: integer(1, 100),
  fall: integer(1, 100),
  connectTimeout: duration(10),
  keepalive: duration(0),
  shutdownTimeout: duration(0),
  ...commonFields,
});

/** `galerad proxy`: options and wiring only; the work is in src/proxy/. */
export function proxyCommand(): Command<[], Record<string, unknown>> {
  const command = new Command("proxy")
    .description("route every client connection to one sticky, healthy Galera node")
    .addOption(
      opt("--listen <host:port>", "where MySQL clients connect", "LISTEN").default("0.0.0.0:3306"),
    )
    .addOption(
      opt(
        "--backend <spec>",
        "a Galera node, NAME=HOST:PORT[,health=URL] (repeatable; agent defaults to http://HOST:9200)",
        "BACKEND",
      )
        .argParser((
          value: string,
          previous: string[] | undefined,
        ) => [...(previous ?? []), ...splitList(value)])
        .default([] as string[]),
    )
    .addOption(
      opt("--api-listen <host:port>", "JSON API (Basic Auth)", "API_LISTEN").default(":8080"),
    )
    .addOption(
      opt(
        "--health-listen <host:port>",
        "load balancer health port: / always 200, /ready 503 without an active node",
        "HEALTH_LISTEN",
      ).default(":1936"),
    )
    .addOption(opt("--api-user <name>", "API user name", "API_USER").default("admin"))
    .addOption(
      opt(
        "--api-password <password>",
        "API password (prefer --api-password-file; generated and logged when neither is set)",
        "API_PASSWORD",
      ),
    )
    .addOption(
      opt(
        "--api-password-file <file>",
        "file whose first line is the API password",
        "API_PASSWORD_FILE",
      ),
    )
    .addOption(
      opt("--interval <duration>", "time between health probes of each node", "INTERVAL").default(
        "500ms",
      ),
    )
    .addOption(
      opt("--timeout <duration>", "a probe with no complete answer by then has failed", "TIMEOUT")
        .default("1s"),
    )
    .addOption(
      opt(
        "--rise <n>",
        "consecutive good probes before an unhealthy node counts as healthy",
        "RISE",
      ).default("2"),
    )
    .addOption(
      opt(
        "--fall <n>",
        "consecutive failed probes before a healthy node counts as unhealthy",
        "FALL",
      ).default("2"),
    )
    .addOption(
      opt(
        "--connect-timeout <duration>",
        "time allowed to connect to the active node",
        "CONNECT_TIMEOUT",
      ).default("2s"),
    )
    .addOption(
      opt(
        "--keepalive <duration>",
        "TCP keepalive idle time on both sides; 0 turns it off",
        "KEEPALIVE",
      ).default("30s"),
    )
    .addOption(
      opt(
        "--shutdown-timeout <duration>",
        "on SIGTERM, how long open sessions may finish before they are closed",
        "SHUTDOWN_TIMEOUT",
      ).default("10s"),
    );
  withCommonOptions(command);
  command.action(async () => {
    const options = resolveOptions(command, schema, { aliases: { backends: "backend" } });
    if (options.backend.length === 0) {
      throw new UsageError("missing --backend: give at least one NAME=HOST:PORT[,health=URL]");
    }
    applyLogging(options);
    let password = options.apiPassword;
    if (options.apiPasswordFile) {
      password = readSecretFile("--api-password-file", options.apiPasswordFile);
    }
    if (!password) {
      password = randomBytes(12).toString("base64url");
      log.warn("no --api-password given; generated one for user {user}: {password}", {
        user: options.apiUser,
        password,
      });
    }
    await runProxy(options, password);
  });
  return command;
}

async function runProxy(options: v.InferOutput<typeof schema>, password: string): Promise<void> {
  const proxy = new Proxy({
    listen: options.listen,
    backends: options.backend,
    intervalMs: options.interval,
    timeoutMs: options.timeout,
    rise: options.rise,
    fall: options.fall,
    connectTimeoutMs: options.connectTimeout,
    keepAliveMs: options.keepalive,
    shutdownTimeoutMs: options.shutdownTimeout,
  });
  try {
    await proxy.start();
  } catch (error) {
    throw new RuntimeFailure(bindError("clients", options.listen, error));
  }
  const api = await serveHttp(
    options.apiListen,
    createApi(proxy, { user: options.apiUser, password }).fetch,
  )
    .catch((error) => {
      throw new RuntimeFailure(bindError("the API", options.apiListen, error));
    });
  const health = await serveHttp(options.healthListen, createHealthApp(proxy).fetch)
    .catch((error) => {
      throw new RuntimeFailure(bindError("health checks", options.healthListen, error));
    });
  log.info("API on {host}:{port}, health port on {healthHost}:{healthPort}", {
    host: options.apiListen.host,
    port: api.port,
    healthHost: options.healthListen.host,
    healthPort: health.port,
  });
  onShutdownSignal(async (signal) => {
    log.info("{signal}: draining", { signal });
    await proxy.shutdown();
    await Promise.all([api.close(), health.close()]);
    log.info("stopped");
  });
}
