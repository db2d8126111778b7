/** Test certificates made with openssl: a CA, a server certificate it signs, and bad ones. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export interface Certs {
  dir: string;
  ca: string;
  cert: string;
  key: string;
  /** Another certificate for the same name, signed by the same CA (a renewal). */
  renewedCert: string;
  renewedKey: string;
  expiredCert: string;
  expiredKey: string;
  /** A key that is not `cert`'s. */
  otherKey: string;
  read(file: string): string;
}

export function makeCerts(): Certs {
  const dir = mkdtempSync(path.join(tmpdir(), "galerad-certs-"));
  const f = (name: string) => path.join(dir, name);
  const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  ssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    f("ca.key"),
    "-out",
    f("ca.pem"),
    "-days",
    "2",
    "-subj",
    "/CN=galerad test CA",
  );
  const server = (name: string, days: string) => {
    ssl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      f(`${name}.key`),
      "-out",
      f(`${name}.csr`),
      "-subj",
      "/CN=127.0.0.1",
    );
    const ext = f(`${name}.ext`);
    execFileSync("sh", ["-c", `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ${ext}`]);
    ssl(
      "x509",
      "-req",
      "-in",
      f(`${name}.csr`),
      "-CA",
      f("ca.pem"),
      "-CAkey",
      f("ca.key"),
      "-CAcreateserial",
      "-out",
      f(`${name}.pem`),
      "-extfile",
      ext,
      "-days",
      days,
    );
  };
  server("server", "2");
  server("renewed", "2");
  server("expired", "-1"); // not after a day before it was made
  ssl("genpkey", "-algorithm", "RSA", "-out", f("other.key"));
  return {
    dir,
    ca: f("ca.pem"),
    cert: f("server.pem"),
    key: f("server.key"),
    renewedCert: f("renewed.pem"),
    renewedKey: f("renewed.key"),
    expiredCert: f("expired.pem"),
    expiredKey: f("expired.key"),
    otherKey: f("other.key"),
    read: (file) => readFileSync(file, "utf8"),
  };
}
