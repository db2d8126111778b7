/**
 * `galerad bootstrap` on a real Galera lab: agents with controls that run the lab's own start,
 * bootstrap and stop commands, and full outages of every kind.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { waitFor } from "../../scripts/lab/fixtures.ts";
import { connect, type Lab, lab } from "../../scripts/lab/lab.ts";
import { type Daemon, ROOT, runCli, startDaemon } from "../../scripts/lab/spawn.ts";

const L: Lab = lab({ dir: "/tmp/galerad-e2e-boot-lab", port: 27306, galeraPort: 28567 });
const AGENT_PORT = 29400;
const LAB_ENV = { LAB_DIR: L.dir, LAB_PORT: "27306", LAB_GALERA_PORT: "28567" };
const SCRIPT = path.join(ROOT, "scripts/galera-lab.sh");
const agents: (Daemon | null)[] = [null, null, null];

function startAgent(i: number) {
  agents[i] = startDaemon([
    "healthcheck",
    "--listen",
    `127.0.0.1:${AGENT_PORT + i}`,
    "--mysql-socket",
    L.socket(i),
    "--interval",
    "200ms",
    "--api-password",
    "lab-secret-pw",
    "--datadir",
    `${L.dir}/node${i}/data`,
    "--defaults-file",
    `${L.dir}/node${i}/my.cnf`,
    "--start-command",
    `bash ${SCRIPT} start ${i}`,
    "--bootstrap-command",
    `bash ${SCRIPT} bootstrap ${i}`,
    "--stop-command",
    `bash ${SCRIPT} stop ${i}`,
  ], { env: LAB_ENV });
}

async function bootstrap(...extra: string[]) {
  const r = await runCli([
    "bootstrap",
    "--format",
    "json",
    "--api-password",
    "lab-secret-pw",
    "--log-level",
    "error",
    ...[0, 1, 2].map((i) => `--agent=node${i}=http://127.0.0.1:${AGENT_PORT + i}`),
    ...extra,
  ], { timeoutMs: 300_000 });
  let out: Record<string, unknown> = {};
  try {
    out = JSON.parse(r.stdout);
  } catch {
    throw new Error(`bootstrap printed no JSON (exit ${r.code}): ${r.stdout} ${r.stderr}`);
  }
  return { code: r.code, out, stderr: r.stderr };
}

async function rows(i: number): Promise<number[]> {
  const c = await connect(L.port(i));
  try {
    const [r] = await c.query("SELECT id FROM lab.boot ORDER BY id");
    return (r as { id: number }[]).map((x) => x.id);
  } finally {
    await c.end();
  }
}

async function insert(i: number, ids: number[]) {
  const c = await connect(L.port(i));
  try {
    for (const id of ids) await c.query("INSERT INTO lab.boot (id) VALUES (?)", [id]);
  } finally {
    await c.end();
  }
}

async function allSynced() {
  for (let i = 0; i < 3; i++) expect(await L.status(i, "wsrep_local_state_comment")).toBe("Synced");
  expect(await L.status(0, "wsrep_cluster_size")).toBe("3");
}

async function agentsAnswer() {
  await waitFor("agents up", async () => {
    for (let i = 0; i < 3; i++) {
      if (!(await fetch(`http://127.0.0.1:${AGENT_PORT + i}/health`).catch(() => null))?.ok) {
        return false;
      }
    }
    return true;
  }, 30_000);
}

beforeAll(async () => {
  await L.run("destroy");
  await L.run("up", "3");
  await L.sql(0, "CREATE TABLE lab.boot (id INT PRIMARY KEY)");
  for (let i = 0; i < 3; i++) startAgent(i);
  await agentsAnswer();
}, 300_000);

afterAll(async () => {
  for (const a of agents) await a?.stop();
  await L.run("destroy");
}, 120_000);

describe("galerad bootstrap on a real Galera lab", () => {
  test("a running cluster: nothing to do (exit 3)", async () => {
    const r = await bootstrap();
    expect(r.code).toBe(3);
    expect(r.out.outcome).toBe("nothing");
  }, 60_000);

  test(
    "(a) clean shutdown of every node: the last one to stop (safe_to_bootstrap) starts the cluster, data intact",
    async () => {
      await insert(0, [1, 2, 3]);
      await L.run("down"); // stops node2, node1, node0: node0 leaves last
      const dry = await bootstrap("--dry-run");
      expect(dry.code).toBe(0);
      expect(dry.out.plan).toMatchObject({
        action: "bootstrap",
        bootstrap: "node0",
        join: ["node1", "node2"],
      });
      expect(await L.status(0, "wsrep_local_state_comment")).toBeNull(); // the dry run changed nothing
      const r = await bootstrap();
      expect(r.code).toBe(0);
      expect(r.out.outcome).toBe("done");
      await allSynced();
      for (let i = 0; i < 3; i++) expect(await rows(i)).toEqual([1, 2, 3]);
    },
    300_000,
  );

  test(
    "(b, c) kill -9 of every node: positions recovered, the node with the last committed write chosen, older nodes not",
    async () => {
      await L.run("kill", "2"); // node2 leaves first: the oldest state
      await insert(0, [4]);
      await L.run("stop", "1"); // node1 leaves cleanly: newer than node2, older than node0
      await insert(0, [5, 6]); // acknowledged by node0 alone (still Primary after a clean leave)
      await L.run("kill", "0");
      const grastate = readFileSync(`${L.dir}/node0/data/grastate.dat`, "utf8");
      expect(grastate).toMatch(/seqno:\s+-1/);
      const r = await bootstrap();
      expect(r.code).toBe(0);
      const survey = r.out.survey as { name: string; seqno: number }[];
      const seq = Object.fromEntries(survey.map((n) => [n.name, n.seqno]));
      expect(seq.node0).toBeGreaterThan(seq.node1);
      expect(seq.node1).toBeGreaterThan(seq.node2);
      expect(r.out.plan).toMatchObject({ action: "bootstrap", bootstrap: "node0" });
      await allSynced();
      for (let i = 0; i < 3; i++) expect(await rows(i)).toEqual([1, 2, 3, 4, 5, 6]);
    },
    300_000,
  );

  test("(d) a node from another cluster (different UUID) is refused (exit 4)", async () => {
    await L.run("down");
    const file = `${L.dir}/node2/data/grastate.dat`;
    const original = readFileSync(file, "utf8");
    writeFileSync(
      file,
      original.replace(/^uuid:.*$/m, "uuid:    11111111-2222-3333-4444-555555555555"),
    );
    try {
      const r = await bootstrap();
      expect(r.code).toBe(4);
      expect(r.out.outcome).toBe("refused");
      expect(String(r.out.error)).toContain("node2 has 11111111-2222-3333-4444-555555555555");
    } finally {
      writeFileSync(file, original);
    }
  }, 120_000);

  test("(e) with one agent down: refused without --force, done with it", async () => {
    await agents[1]!.stop();
    agents[1] = null;
    const r = await bootstrap();
    expect(r.code).toBe(4);
    expect(String(r.out.error)).toContain("node1 cannot be read");
    expect(String(r.out.error)).toContain("might hold the newest state");
    startAgent(1);
    await agentsAnswer();
    const ok = await bootstrap();
    expect(ok.code).toBe(0);
    await allSynced();
  }, 300_000);

  test("controls need credentials, and never run while the server runs", async () => {
    expect((await fetch(`http://127.0.0.1:${AGENT_PORT}/mysql_status`)).status).toBe(401);
    const auth = {
      Authorization: `Basic ${btoa("admin:lab-secret-pw")}`,
      "X-Galerad-Request": "1",
    };
    const status =
      await (await fetch(`http://127.0.0.1:${AGENT_PORT}/mysql_status`, { headers: auth })).json();
    expect(status).toEqual({ status: "running" });
    const seq = await fetch(`http://127.0.0.1:${AGENT_PORT}/sequence_number`, { headers: auth });
    expect(seq.status).toBe(409);
    const start = await fetch(`http://127.0.0.1:${AGENT_PORT}/start_mysql_join`, {
      method: "POST",
      headers: auth,
    });
    expect(start.status).toBe(409);
  }, 60_000);
});
