/**
 * A fixed-size ring: the newest `capacity` items, oldest first. Memory stays the same however
 * long the process runs (the dashboard's last 15 minutes, at one sample a second).
 */
export class Ring<T> {
  #items: (T | undefined)[];
  #next = 0;
  #size = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be a positive integer: current value is ${capacity}`);
    }
    this.#items = new Array(capacity);
  }

  get size(): number {
    return this.#size;
  }

  push(item: T): void {
    this.#items[this.#next] = item;
    this.#next = (this.#next + 1) % this.capacity;
    this.#size = Math.min(this.capacity, this.#size + 1);
  }

  /** Oldest first. */
  values(): T[] {
    const start = (this.#next - this.#size + this.capacity) % this.capacity;
    return Array.from({ length: this.#size }, (_, i) => this.#items[(start + i) % this.capacity]!);
  }
}
