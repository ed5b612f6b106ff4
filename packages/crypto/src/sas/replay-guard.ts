/**
 * Remembers which single-use tokens were already presented. An entry lives only as long as its
 * token could still be accepted (until its expiry): after that the token is refused as expired
 * anyway, so forgetting it is safe and memory stays bounded by the tokens alive at once.
 */
export type ReplayVerdict = 'accepted' | 'replayed' | 'full';

export interface ReplayGuard {
  /**
   * Records `id` as used until `expiresAt` (unix seconds). `replayed` when it was recorded
   * before; `full` when the guard cannot remember more (the token is then refused: failing
   * open would make a full guard a replay window). May be async for a shared store (PostgreSQL,
   * Redis) when several server nodes must agree.
   */
  markUsed(id: string, expiresAt: number, now: number): ReplayVerdict | Promise<ReplayVerdict>;
}

export interface InMemoryReplayGuardOptions {
  /** Hard cap on remembered tokens. Default 100,000 (~10 MB with 44-char ids). */
  maxEntries?: number;
}

/** Single-process ReplayGuard. For several server nodes, use a shared implementation. */
export class InMemoryReplayGuard implements ReplayGuard {
  readonly #max: number;
  readonly #used = new Map<string, number>();
  /** Earliest expiry among entries: nothing can be swept before then, so no scan is wasted. */
  #earliest = Number.POSITIVE_INFINITY;

  constructor(options: InMemoryReplayGuardOptions = {}) {
    const max = options.maxEntries ?? 100_000;
    if (!Number.isInteger(max) || max < 1) throw new RangeError('maxEntries must be a positive integer');
    this.#max = max;
  }

  get size(): number {
    return this.#used.size;
  }

  markUsed(id: string, expiresAt: number, now: number): ReplayVerdict {
    if (now >= this.#earliest) this.#sweep(now);
    const until = this.#used.get(id);
    if (until !== undefined && until > now) return 'replayed';
    if (this.#used.size >= this.#max) return 'full';
    this.#used.set(id, expiresAt);
    if (expiresAt < this.#earliest) this.#earliest = expiresAt;
    return 'accepted';
  }

  #sweep(now: number): void {
    let earliest = Number.POSITIVE_INFINITY;
    for (const [id, until] of this.#used) {
      if (until <= now) this.#used.delete(id);
      else if (until < earliest) earliest = until;
    }
    this.#earliest = earliest;
  }
}
