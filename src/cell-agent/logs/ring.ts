// A fixed-size ring buffer: the last N log lines of a log guid, for "recent logs" (Loggregator's
// `cf logs --recent` reads the recent envelopes its log cache keeps per source id).

export class RingBuffer<T> {
  readonly capacity: number;
  readonly #items: T[] = [];
  #start = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new Error(`ring buffer capacity must be ≥ 1 (got ${capacity})`);
    this.capacity = capacity;
  }

  get size(): number {
    return this.#items.length;
  }

  /** Appends an item, dropping the oldest when full. */
  push(item: T): void {
    if (this.#items.length < this.capacity) {
      this.#items.push(item);
      return;
    }
    this.#items[this.#start] = item;
    this.#start = (this.#start + 1) % this.capacity;
  }

  /** The items, oldest first. */
  toArray(): T[] {
    return [...this.#items.slice(this.#start), ...this.#items.slice(0, this.#start)];
  }
}
