/**
 * TLS for the API, the dashboard and the agent, with certificates the test makes (openssl):
 * served over https, refused when expired or not a pair (one line, exit 2), re-read on SIGHUP,
 * and a proxy probing an https agent with --agent-ca-file.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { copyFileSync } from "node:fs";
import path from "node:path";
import tls from "node:tls";
import { type Certs, makeCerts } from "../helpers/certs.ts";
import { startBackend, type TestBackend, waitFor } from "../../scripts/lab/fixtures.ts";
import { LOOPBACK_PORTS, props, runCli, startDaemon } from "../../scripts/lab/spawn.ts";

let certs: Certs;
let backend: TestBackend;
beforeAll(async () => {
  certs = makeCerts();
  backend = await startBackend("db0");
}, 30_000);
afterAll(async () => await backend.close());

const oneLine = (s: string) =>
  s.trim().split("\n").filter((l) => l.startsWith("galerad:")).join("");

/** The serial number of the certificate a TLS server on `port` presents. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.destroy();
    });
    s.on("error", reject);
  });
}

const serial = (file: string) => new X509Certificate(certs.read(file)).serialNumber;

describe("TLS", () => {
  test("expired, unpaired or half-given certificates: one line naming the flag, exit 2", async () => {
    const base = [
      "proxy",
      "--backend",
      "db0=127.0.0.1:1",
      "--api-password",
      "lab-secret-x",
      "--check-config",
    ];
    const expired = await runCli([
      ...base,
      "--api-tls-cert",
      certs.expiredCert,
      "--api-tls-key",
      certs.expiredKey,
    ]);
    expect(expired.code).toBe(2);
    expect(oneLine(expired.stderr)).toMatch(
      new RegExp(
        `^galerad: invalid --api-tls-cert "${certs.expiredCert}": the certificate expired on `,
      ),
    );
    const mismatched = await runCli([
      ...base,
      "--api-tls-cert",
      certs.cert,
      "--api-tls-key",
      certs.otherKey,
    ]);
    expect(mismatched.code).toBe(2);
    expect(oneLine(mismatched.stderr)).toBe(
      `galerad: invalid --api-tls-key "${certs.otherKey}": it is not the key of the certificate in --api-tls-cert "${certs.cert}"`,
    );
    const half = await runCli([...base, "--api-tls-cert", certs.cert]);
    expect(oneLine(half.stderr)).toBe(
      "galerad: --api-tls-key is missing: give both --api-tls-cert and --api-tls-key",
    );
    const only = await runCli([...base, "--api-tls-only"]);
    expect(oneLine(only.stderr)).toBe(
      "galerad: --api-tls-only needs --api-tls-cert and --api-tls-key: refusing plain HTTP",
    );
    const agent = await runCli([
      "healthcheck",
      "--api-tls-cert",
      certs.cert,
      "--api-tls-key",
      certs.otherKey,
    ]);
    expect(agent.code).toBe(2);
    expect(oneLine(agent.stderr)).toContain("it is not the key of the certificate");
  });

  test(
    "an https agent probed with --agent-ca-file; the proxy's API over https, renewed on SIGHUP",
    async () => {
      const live = path.join(certs.dir, "live.pem");
      const liveKey = path.join(certs.dir, "live.key");
      copyFileSync(certs.cert, live);
      copyFileSync(certs.key, liveKey);
      // An agent without a database: it answers (unhealthy), which is all this test needs.
      const agent = startDaemon([
        "healthcheck",
        "--listen",
        "127.0.0.1:0",
        "--mysql-host",
        "127.0.0.1",
        "--mysql-port",
        "1",
        "--api-tls-cert",
        certs.cert,
        "--api-tls-key",
        certs.key,
      ]);
      try {
        const line = await agent.waitForLog(
          "listening",
          (l) => String(l.message).startsWith("agent listening"),
        );
        const agentUrl = `https://127.0.0.1:${props(line).port}`;
        const status = await fetch(
          `${agentUrl}/api/v1/status`,
          { tls: { ca: certs.read(certs.ca) } } as RequestInit,
        );
        expect((await status.json()).healthy).toBe(false);
        await expect(fetch(`${agentUrl}/api/v1/status`)).rejects.toThrow();
        const proxyArgs = (extra: string[]) => [
          "proxy",
          ...LOOPBACK_PORTS,
          "--api-password",
          "lab-secret-x",
          "--backend",
          `db0=127.0.0.1:${backend.port},health=${agentUrl}`,
          "--interval",
          "100ms",
          ...extra,
        ];
        const withCa = startDaemon(proxyArgs([
          "--agent-ca-file",
          certs.ca,
          "--api-tls-cert",
          live,
          "--api-tls-key",
          liveKey,
        ]));
        const withoutCa = startDaemon(proxyArgs([]));
        try {
          const api = props(
            await withCa.waitForLog("API", (l) => String(l.message).startsWith("API on")),
          );
          expect(api.scheme).toBe("https");
          const url = `https://127.0.0.1:${api.port}`;
          const get = (p: string) =>
            fetch(`${url}${p}`, {
              headers: { Authorization: `Basic ${btoa("admin:lab-secret-x")}` },
              tls: { ca: certs.read(certs.ca) },
            } as RequestInit);
          // With the CA the agent's own answer comes through; without, the TLS failure.
          await waitFor("the agent's answer", async () => {
            const [b] = await (await get("/v0/backends")).json();
            return String(b.reason).includes("MariaDB");
          });
          const plainUrl = props(
            await withoutCa.waitForLog("API", (l) => String(l.message).startsWith("API on")),
          );
          await waitFor("a certificate error", async () => {
            const [b] = await (await fetch(`http://127.0.0.1:${plainUrl.port}/v0/backends`, {
              headers: { Authorization: `Basic ${btoa("admin:lab-secret-x")}` },
            })).json();
            return /agent unreachable/.test(String(b.reason)) ? b.reason : false;
          });
          // A renewed certificate in place of the old files: SIGHUP serves it.
          expect(await servedSerial(Number(api.port))).toBe(serial(certs.cert));
          copyFileSync(certs.renewedCert, live);
          copyFileSync(certs.renewedKey, liveKey);
          withCa.child.kill("SIGHUP");
          await withCa.waitForLog(
            "reloaded",
            (l) => String(l.message).startsWith("API certificate reloaded"),
          );
          expect(await servedSerial(Number(api.port))).toBe(serial(certs.renewedCert));
          expect((await get("/v0/cluster")).status).toBe(200);
        } finally {
          await withCa.stop();
          await withoutCa.stop();
        }
      } finally {
        await agent.stop();
      }
    },
    60_000,
  );
});
