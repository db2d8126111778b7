/**
 * Stand-in nodes for a tier of proxies (tier.ts): a backend process per name, and health agents
 * for them, either one per backend that every proxy asks, or one per proxy and backend, so a test
 * can show one proxy a view of the nodes the others do not share.
 */
import {
  type AgentAnswer,
  startAgent,
  startBackend,
  type TestAgent,
  type TestBackend,
} from "./fixtures.ts";

/** The key of agents every proxy shares. */
const SHARED = "";

export class TierNodes {
  private constructor(
    readonly names: string[],
    readonly backends: TestBackend[],
    /** By proxy (SHARED when one set serves all), then by backend. */
    private readonly agents: Map<string, Map<string, TestAgent>>,
  ) {}

  /**
   * Starts `names` (each agent reports its position as `wsrep_local_index`), with agents per
   * proxy of `proxies` when given, else one set every proxy shares.
   */
  static async start(names: string[], proxies: string[] = []): Promise<TierNodes> {
    const backends = await Promise.all(names.map((name) => startBackend(name)));
    const agents = new Map<string, Map<string, TestAgent>>();
    for (const proxy of proxies.length > 0 ? proxies : [SHARED]) {
      const own = new Map<string, TestAgent>();
      for (const [index, name] of names.entries()) {
        own.set(name, await startAgent({ healthy: true, index }));
      }
      agents.set(proxy, own);
    }
    return new TierNodes(names, backends, agents);
  }

  /** The agent `proxy` asks about `backend` (the shared one when agents are not per proxy). */
  agent(backend: string, proxy = SHARED): TestAgent {
    const own = this.agents.get(this.agents.has(proxy) ? proxy : SHARED);
    const agent = own?.get(backend);
    if (!agent) throw new Error(`no agent for backend "${backend}" as proxy "${proxy}" sees it`);
    return agent;
  }

  /** Changes what `backend`'s agents answer, as the proxies in `only` see it (default: all). */
  set(backend: string, answer: Partial<AgentAnswer>, only?: string[]): void {
    for (const proxy of only ?? this.agents.keys()) this.agent(backend, proxy).set(answer);
  }

  /** The `--backend` specs `proxy` starts with. */
  backendsFor(proxy = SHARED): string[] {
    return this.names.map((name, i) =>
      `${name}=127.0.0.1:${this.backends[i].port},health=${this.agent(name, proxy).url}`
    );
  }

  /** Every agent healthy and answering again (between tests). */
  reset(): void {
    for (const own of this.agents.values()) {
      for (const agent of own.values()) agent.set({ healthy: true, hang: false });
    }
  }

  async close(): Promise<void> {
    for (const backend of this.backends) await backend.close();
    for (const own of this.agents.values()) for (const agent of own.values()) await agent.close();
  }
}
