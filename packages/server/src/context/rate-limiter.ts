/**
 * Where request budgets are kept. The in-memory RateLimiter below serves one process; a
 * cluster-wide store (shared by every instance behind a load balancer) implements the same
 * method. `take` spends one unit of `key`'s budget and answers 0, or refuses and answers how
 * many milliseconds until the next unit is available.
 */
export interface RateLimitStore {
  take(key: string, now: number): number | Promise<number>;
}

/**
 * Token buckets keyed by a string (a source address, a device id). Bounded: past `maxKeys` the
 * table is cleared, which at worst forgives some callers early rather than growing without limit.
 */
export class RateLimiter implements RateLimitStore {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly burst: number = perMinute,
    private readonly maxKeys = 100_000,
  ) {}

  allow(key: string, now: number): boolean {
    return this.take(key, now) === 0;
  }

  take(key: string, now: number): number {
    let b = this.#buckets.get(key);
    if (b === undefined) {
      if (this.#buckets.size >= this.maxKeys) this.#buckets.clear();
      b = { tokens: this.burst, at: now };
      this.#buckets.set(key, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((Math.max(now, b.at) - b.at) / 60_000) * this.perMinute);
    b.at = Math.max(now, b.at);
    if (b.tokens < 1) return Math.max(1, Math.ceil(((1 - b.tokens) * 60_000) / this.perMinute));
    b.tokens -= 1;
    return 0;
  }
}
