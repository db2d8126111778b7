/**
 * The example alert rules of docs/alerts.md, evaluated by Prometheus's own `promtool` over what a
 * real tier of proxies exposes. Each scenario scrapes every running proxy's /metrics twice, a few
 * seconds apart, and replays that as ten minutes of series (gauges as read, counters growing at
 * the rate they grew), labelled as a scrape would label them (`instance`, `job`). Then every
 * rule is checked: the alerts the scenario must raise, with their labels and summaries, and
 * silence from the others (the slow-connect and kernel-flood rules are only checked to stay
 * silent here). Every scrape also passes `promtool check metrics`.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import dgram from "node:dgram";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { connectClient, greeting, waitFor } from "../../scripts/lab/fixtures.ts";
import { Tier } from "../../scripts/lab/tier.ts";
import { TierNodes } from "../../scripts/lab/tier_nodes.ts";
import { emptyRegister } from "../../src/core/register.ts";
import { encodeMessage } from "../../src/peers/codec.ts";
import { createKeyRing } from "../../src/peers/keyring.ts";

const ROOT = path.resolve(import.meta.dir, "../..");
const DIR = mkdtempSync(path.join(tmpdir(), "galerad-alerts-"));
/** How far apart the two scrapes of a scenario are. */
const SCRAPE_GAP_MS = 3000;
/** The replayed series: one sample every STEP_S seconds, for STEPS steps (ten minutes). */
const STEP_S = 15;
const STEPS = 40;
const EVAL_AT = "10m";

interface Rule {
  alert: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** The rules as the document shows them: its one YAML block, written where promtool reads it. */
function documentedRules(): Rule[] {
  const doc = readFileSync(path.join(ROOT, "docs/alerts.md"), "utf8");
  const block = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
  if (!block) throw new Error("docs/alerts.md has no yaml block");
  writeFileSync(path.join(DIR, "rules.yml"), block);
  const parsed = Bun.YAML.parse(block) as { groups: { rules: Rule[] }[] };
  return parsed.groups.flatMap((g) => g.rules);
}

function promtool(args: string[], input?: string) {
  const r = spawnSync("promtool", args, { cwd: DIR, encoding: "utf8", timeout: 60_000, input });
  if (r.error) throw new Error(`promtool: ${r.error.message} (scripts/setup.sh installs it)`);
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  counter: boolean;
}

/** The samples of one exposition, keyed by series; counters (and histogram parts) marked. */
function samples(text: string): Map<string, Sample> {
  const types = new Map<string, string>();
  const out = new Map<string, Sample>();
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1], type[2]);
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    const family = m[1].replace(/_(bucket|sum|count)$/, "");
    const kind = types.get(m[1]) ?? types.get(family);
    out.set(`${m[1]}{${m[2] ?? ""}}`, {
      name: m[1],
      labels,
      value: Number(m[3]),
      counter: kind === "counter" || kind === "histogram",
    });
  }
  return out;
}

/** promtool's input series for one proxy's two scrapes. */
function series(instance: string, first: string, second: string, gapS: number) {
  const before = samples(first);
  return [...samples(second)].map(([key, s]) => {
    const labels = { ...s.labels, instance, job: "galerad" };
    const name = `${s.name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(",")}}`;
    const was = before.get(key)?.value ?? s.value;
    const step = s.counter ? Math.max(0, ((s.value - was) * STEP_S) / gapS) : 0;
    return { series: name, values: `${was}+${step}x${STEPS}` };
  });
}

interface Expected {
  alert: string;
  labels: Record<string, string>;
}

/** Runs every documented rule over the scrapes; `expected` are the alerts that must be firing. */
function evaluate(
  rules: Rule[],
  input: { series: string; values: string }[],
  expected: Expected[],
) {
  const tests = [{
    interval: `${STEP_S}s`,
    input_series: input,
    alert_rule_test: rules.map((rule) => ({
      eval_time: EVAL_AT,
      alertname: rule.alert,
      exp_alerts: expected.filter((e) => e.alert === rule.alert).map((e) => {
        // A rule by instance keeps the scrape's job with it; a tier-wide one keeps neither.
        const job = "instance" in e.labels ? { job: "galerad" } : {};
        const labels: Record<string, string> = { ...e.labels, ...job, ...rule.labels };
        const annotations = Object.fromEntries(
          Object.entries(rule.annotations ?? {}).map(([k, v]) => [
            k,
            v.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, l) => labels[l]),
          ]),
        );
        return { exp_labels: labels, exp_annotations: annotations };
      }),
    })),
  }];
  writeFileSync(
    path.join(DIR, "test.yml"),
    JSON.stringify({ rule_files: ["rules.yml"], evaluation_interval: `${STEP_S}s`, tests }),
  );
  return promtool(["test", "rules", "test.yml"]);
}

let nodes: TierNodes | null = null;
let tier: Tier | null = null;

afterAll(async () => {
  await tier?.stopAll();
  await nodes?.close();
});

async function metrics(name: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${tier!.member(name).apiPort}/metrics`, {
    headers: { Authorization: `Basic ${btoa("admin:lab-secret-pw")}` },
  });
  return res.text();
}

/** Two scrapes of every running proxy, SCRAPE_GAP_MS apart, with `meanwhile` run between. */
async function scrape(meanwhile: () => Promise<void> = async () => {}) {
  const names = [...tier!.members.values()].filter((m) => m.daemon).map((m) => m.name);
  const first = await Promise.all(names.map(metrics));
  const started = performance.now();
  await meanwhile();
  await Bun.sleep(Math.max(0, SCRAPE_GAP_MS - (performance.now() - started)));
  const second = await Promise.all(names.map(metrics));
  const gapS = (performance.now() - started) / 1000;
  // Each exposition passes Prometheus's own lint too (format, names, units, help).
  for (const [i, text] of second.entries()) {
    expect({ proxy: names[i], ...promtool(["check", "metrics"], text) }).toEqual({
      proxy: names[i],
      code: 0,
      out: "",
    });
  }
  return names.flatMap((n, i) => series(n, first[i], second[i], gapS));
}

describe("the example alert rules (docs/alerts.md), by promtool over a real tier", () => {
  test("the rules load", () => {
    documentedRules();
    const r = promtool(["check", "rules", "rules.yml"]);
    expect(r.out).toContain("SUCCESS");
    expect(r.code).toBe(0);
  });

  test(
    "all well raises none; a slow failover, an agent down, forged peer datagrams and a proxy cut off raise theirs",
    async () => {
      const rules = documentedRules();
      const db = (nodes = await TierNodes.start(["db0", "db1"]));
      tier = await Tier.create({ names: ["p1", "p2", "p3"], backendsFor: () => db.backendsFor() });
      await tier.startAll();
      await tier.converged("db0");

      let r = evaluate(rules, await scrape(), []);
      expect(r.out).toContain("SUCCESS");
      expect(r.code).toBe(0);

      // db0 turns unhealthy and the tier moves to db1, but no client comes for longer than the
      // slow-failover rule's 10 s: each proxy's failover, detection to its first session on the
      // new node, is that long (docs/alerts.md says so). The rule is tier-wide: no instance.
      const probes = (instance: string) => ({
        alert: "GaleradProbeFailures",
        labels: { instance, backend: "db0" },
      });
      db.set("db0", { healthy: false });
      await tier.converged("db1");
      await Bun.sleep(11_000);
      const firstSessions = async () => {
        for (const p of ["p1", "p2", "p3"]) {
          expect(await greeting(tier!.member(p).clientPort)).toContain("hello db1");
        }
      };
      r = evaluate(rules, await scrape(firstSessions), [
        ...["p1", "p2", "p3"].map(probes),
        { alert: "GaleradSlowFailover", labels: {} },
      ]);
      expect(r.out).toContain("SUCCESS");
      expect(r.code).toBe(0);

      // db0's agent stops answering at all: the probes of it still fail, nothing moves. Meanwhile
      // p1's peer port gets forged datagrams (no key of the tier signed them).
      await db.agent("db0").close();
      await waitFor("db0's agent unreachable everywhere", async () => {
        for (const p of ["p1", "p2", "p3"]) {
          const c = await tier!.api(p, "/v0/backends");
          const db0 = c.find((b: { name: string }) => b.name === "db0");
          if (!/unreachable|did not answer/.test(JSON.stringify(db0))) return false;
        }
        return true;
      });
      const forger = dgram.createSocket("udp4");
      const datagram = await encodeMessage(
        {
          kind: "state",
          from: "p2",
          to: "p1",
          incarnation: "f0f0f0f0",
          digest: "00000000",
          register: { ...emptyRegister("galera"), epoch: 99, active: "db1", proposer: "p2" },
          epochSeen: 99,
          view: {},
          serving: null,
        },
        { bootId: new Uint8Array(8), seq: 1 },
        await createKeyRing(["not the tier's secret at all"]),
      );
      const forged = async () => {
        for (let i = 0; i < 60; i++) {
          forger.send(datagram, tier!.member("p1").peerPort, "127.0.0.1");
          await Bun.sleep(SCRAPE_GAP_MS / 80);
        }
      };
      const wire = await scrape(forged);
      forger.close();
      const drops = wire.find((s) =>
        s.series.startsWith("galerad_gossip_packets_dropped_total{") &&
        s.series.includes('instance="p1"') && !/\+0x/.test(s.values)
      );
      expect(drops?.series).toContain('reason="unknown_key"');
      r = evaluate(rules, wire, [
        ...["p1", "p2", "p3"].map(probes),
        {
          alert: "GaleradPeerWireDrops",
          labels: { instance: "p1", reason: /reason="(\w+)"/.exec(drops!.series)![1] },
        },
      ]);
      expect(r.out).toContain("SUCCESS");
      expect(r.code).toBe(0);

      // p3 loses both other voters: it routes nowhere and refuses the clients that come.
      await tier.stop("p1", "SIGKILL");
      await tier.stop("p2", "SIGKILL");
      await waitFor("p3 hears only itself and routes nowhere", async () => {
        const text = await metrics("p3");
        return /^galerad_quorum_voters_heard 1$/m.test(text) &&
          !/^galerad_backend_active\{[^}]*\} 1$/m.test(text);
      });
      const refusedClients = async () => {
        for (let i = 0; i < 3; i++) {
          const c = await connectClient(tier!.member("p3").clientPort);
          await c.closed;
        }
      };
      const input = await scrape(refusedClients);
      // Every reason is exported from the start at zero: the one these clients met has grown.
      const refused = input.find((s) =>
        s.series.startsWith("galerad_sessions_refused_total{") && !/\+0x/.test(s.values)
      );
      r = evaluate(rules, input, [
        probes("p3"),
        { alert: "GaleradNoActiveNode", labels: { instance: "p3" } },
        { alert: "GaleradVotersMissing", labels: { instance: "p3" } },
        { alert: "GaleradPeerDown", labels: { instance: "p3" } },
        {
          alert: "GaleradMinorityRefusing",
          labels: {
            instance: "p3",
            reason: /reason="(\w+)"/.exec(refused?.series ?? "")?.[1] ?? "",
          },
        },
      ]);
      expect(refused?.series).toMatch(/reason="(no_quorum|minority)"/);
      expect(r.out).toContain("SUCCESS");
      expect(r.code).toBe(0);
    },
    120_000,
  );
});
