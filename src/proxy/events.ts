/** One state change worth showing an operator (health, active node, traffic, peers). */
export interface ProxyEvent {
  time: number;
  kind: string;
  message: string;
  data?: Record<string, unknown>;
}

/** Keeps the last `capacity` events for the API and dashboard. */
export class EventLog {
  #items: ProxyEvent[] = [];
  #listeners = new Set<(event: ProxyEvent) => void>();

  constructor(readonly capacity = 200) {}

  push(event: ProxyEvent): void {
    this.#items.push(event);
    if (this.#items.length > this.capacity) this.#items.shift();
    for (const listener of this.#listeners) listener(event);
  }

  list(): ProxyEvent[] {
    return [...this.#items];
  }

  subscribe(listener: (event: ProxyEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
