export interface GroupCommitOptions {
  /** Most items one transaction writes. */
  readonly maxBatch: number;
  /**
   * How long the first queued item waits for company before its transaction starts. On SQLite
   * the commit (an fsync) runs on the event loop, so nothing can arrive while it is in flight:
   * without a short wait every item would pay a whole fsync of its own.
   */
  readonly lingerMs: number;
}

interface Waiter<I, O> {
  readonly item: I;
  resolve(out: O): void;
  reject(e: unknown): void;
}

/**
 * Group commit: items submitted within `lingerMs` of each other, or while a transaction is in
 * flight, are written by one transaction, so the cost of a durable commit is shared. An item's
 * promise resolves only after its transaction committed, and rejects if it failed.
 */
export class GroupCommit<I, O> {
  #queue: Waiter<I, O>[] = [];
  #flushing: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly write: (items: I[]) => Promise<O[]>,
    private readonly options: GroupCommitOptions,
  ) {}

  /** Items queued or in a transaction that has not committed yet. */
  get pending(): number {
    return this.#queue.length;
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (this.#flushing !== null) return; // the running flush loop takes it
      if (this.#queue.length >= this.options.maxBatch || this.options.lingerMs <= 0) this.#start();
      else this.#timer ??= setTimeout(() => this.#start(), this.options.lingerMs);
    });
  }

  /** Writes whatever is queued now, without waiting for the linger. */
  async drain(): Promise<void> {
    // Until nothing is queued: a flush can end with items that arrived from its continuations.
    while (this.#flushing !== null || this.#queue.length > 0) {
      if (this.#flushing === null) this.#start();
      await this.#flushing;
    }
  }

  #start(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#flushing = this.#flush().finally(() => {
      this.#flushing = null;
      // Something submitted from a continuation of the last batch, after the loop saw it empty.
      if (this.#queue.length > 0 && this.#timer === null) this.#timer = setTimeout(() => this.#start(), this.options.lingerMs);
    });
  }

  async #flush(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.options.maxBatch);
      try {
        const out = await this.write(batch.map((w) => w.item));
        batch.forEach((w, i) => w.resolve(out[i] as O));
      } catch (e) {
        for (const w of batch) w.reject(e);
      }
    }
  }
}
