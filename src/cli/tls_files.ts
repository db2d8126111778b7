import { readOptionFile } from "./common.ts";
import type { HttpServer, TlsFiles } from "../runtime/types.ts";
import { UsageError } from "./errors.ts";

/** Flags that name the files, for messages: the proxy's and the agent's are the same. */
const CERT = "--api-tls-cert";
const KEY = "--api-tls-key";

/**
 * Reads and checks an HTTPS listener's certificate and key: readable, PEM, in their validity
 * window, and a pair. Each problem is one UsageError line naming the flag and the file. Null
 * when neither is given; `required` (--api-tls-only) makes that an error too.
 */
export async function readTlsFiles(
  options: { apiTlsCert?: string; apiTlsKey?: string; apiTlsOnly?: boolean },
  now = new Date(),
): Promise<TlsFiles | null> {
  const { apiTlsCert: certPath, apiTlsKey: keyPath } = options;
  if (certPath === undefined && keyPath === undefined) {
    if (options.apiTlsOnly) {
      throw new UsageError(`--api-tls-only needs ${CERT} and ${KEY}: refusing plain HTTP`);
    }
    return null;
  }
  if (certPath === undefined || keyPath === undefined) {
    throw new UsageError(
      `${certPath === undefined ? CERT : KEY} is missing: give both ${CERT} and ${KEY}`,
    );
  }
  const cert = readOptionFile(CERT, certPath);
  const key = readOptionFile(KEY, keyPath);
  // node:crypto only where TLS is asked for: a loaded builtin costs memory in every process.
  const { X509Certificate, createPrivateKey } = await import("node:crypto");
  let x509: InstanceType<typeof X509Certificate>;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new UsageError(`invalid ${CERT} "${certPath}": not a PEM certificate`);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new UsageError(`invalid ${KEY} "${keyPath}": not a PEM private key`);
  }
  if (new Date(x509.validTo) < now) {
    throw new UsageError(
      `invalid ${CERT} "${certPath}": the certificate expired on ${x509.validTo}`,
    );
  }
  if (new Date(x509.validFrom) > now) {
    throw new UsageError(
      `invalid ${CERT} "${certPath}": the certificate is not valid before ${x509.validFrom}`,
    );
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new UsageError(
      `invalid ${KEY} "${keyPath}": it is not the key of the certificate in ${CERT} "${certPath}"`,
    );
  }
  return { cert, key };
}

/** A CA file (PEM) the proxy trusts for agents served over https; null when not given. */
export function readCaFile(path: string | undefined): string | null {
  if (path === undefined) return null;
  const text = readOptionFile("--agent-ca-file", path);
  if (!text.includes("-----BEGIN CERTIFICATE-----")) {
    throw new UsageError(`invalid --agent-ca-file "${path}": no PEM certificate in it`);
  }
  return text;
}

/**
 * A reload's new certificate files: when they differ from `current`'s, the server is closed and
 * served again with them on the port it has (":0" asked for any: clients keep the address).
 * Resolves with the server now running and whether it changed.
 */
export async function serveWithNewTls(
  current: { server: HttpServer; tls: TlsFiles | null },
  next: TlsFiles | null,
  serve: (tls: TlsFiles | null, port: number) => Promise<HttpServer>,
): Promise<{ server: HttpServer; tls: TlsFiles | null; changed: boolean }> {
  if (JSON.stringify(next) === JSON.stringify(current.tls)) return { ...current, changed: false };
  await current.server.close();
  return { server: await serve(next, current.server.port), tls: next, changed: true };
}
