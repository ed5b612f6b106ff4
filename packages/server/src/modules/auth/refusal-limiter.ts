/**
 * Bounds how many 401/403 audit entries one source can write: an unauthenticated caller must
 * not be able to grow the append-only log without limit. Token bucket per source; the number of
 * suppressed entries is carried into the next one that is written.
 */
export class RefusalLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number; suppressed: number }>();

  constructor(
    private readonly perMinute = 30,
    private readonly maxSources = 10_000,
  ) {}

  /** Returns null to suppress, or the count suppressed since the last written entry. */
  take(source: string, now: number): number | null {
    let b = this.#buckets.get(source);
    if (b === undefined) {
      if (this.#buckets.size >= this.maxSources) this.#buckets.clear();
      b = { tokens: this.perMinute, at: now, suppressed: 0 };
      this.#buckets.set(source, b);
    }
    b.tokens = Math.min(this.perMinute, b.tokens + ((now - b.at) / 60_000) * this.perMinute);
    b.at = now;
    if (b.tokens < 1) {
      b.suppressed += 1;
      return null;
    }
    b.tokens -= 1;
    const s = b.suppressed;
    b.suppressed = 0;
    return s;
  }
}
