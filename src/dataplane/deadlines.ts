/**
 * Items due at a time, the earliest first: a binary min-heap on parallel arrays (no object per
 * entry). A thread's dials and closes wait here, so that finding the next deadline costs the same
 * with ten thousand sessions connecting as with one, where a scan of every waiting session on
 * every turn of the loop grows with the storm.
 *
 * Entries are not removed when what they time is settled early: whoever pops one checks that it
 * is still due (`validUntil`), and `next` drops those that are not from the top. Nearly every
 * entry is pushed in time order (one connect timeout for every dial), so a push costs a
 * comparison or two.
 */
export class Deadlines<T> {
  #at: number[] = [];
  #items: T[] = [];

  /** `stillDue(item, at)`: false once the entry no longer times anything (settled, or moved). */
  constructor(private readonly stillDue: (item: T, at: number) => boolean) {}

  /** Entries held, settled ones not yet dropped included. */
  get size(): number {
    return this.#at.length;
  }

  push(at: number, item: T): void {
    const times = this.#at;
    const items = this.#items;
    let i = times.length;
    times.push(at);
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (times[parent] <= at) break;
      times[i] = times[parent];
      items[i] = items[parent];
      i = parent;
    }
    times[i] = at;
    items[i] = item;
  }

  /** The earliest time still due, or Infinity; settled entries on top are dropped on the way. */
  next(): number {
    while (this.#at.length > 0) {
      if (this.stillDue(this.#items[0], this.#at[0])) return this.#at[0];
      this.#pop();
    }
    return Infinity;
  }

  /** Takes every entry due at or before `now`, earliest first, and calls `fire` for each still due. */
  fire(now: number, fire: (item: T) => void): void {
    while (this.#at.length > 0 && this.#at[0] <= now) {
      const at = this.#at[0];
      const item = this.#pop();
      if (this.stillDue(item, at)) fire(item);
    }
  }

  #pop(): T {
    const times = this.#at;
    const items = this.#items;
    const top = items[0];
    const lastAt = times.pop()!;
    const last = items.pop()!;
    const n = times.length;
    if (n === 0) return top;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && times[child + 1] < times[child]) child++;
      if (times[child] >= lastAt) break;
      times[i] = times[child];
      items[i] = items[child];
      i = child;
    }
    times[i] = lastAt;
    items[i] = last;
    return top;
  }
}
