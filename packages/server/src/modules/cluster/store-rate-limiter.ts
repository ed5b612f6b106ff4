import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { RateLimitStore } from '../../context/rate-limiter.js';
import type { Store } from '../../store/open-store.js';

/** Old buckets are deleted at most this often (a bucket idle for a full refill equals no bucket). */
const SWEEP_EVERY_MS = 60_000;

/**
 * The same token bucket as the in-memory RateLimiter, kept in the shared store so every node of a
 * cluster spends from one budget per key (issue 15 follow-up). One statement per take: the upsert
 * takes the row lock, refills by the time elapsed, and spends a unit only when one is there, so
 * two nodes taking at once are serialised by the database and cannot both spend the last unit.
 */
export class StoreRateLimiter implements RateLimitStore {
  readonly #perMs: number;
  readonly #fullMs: number;
  #lastSweep = 0;

  constructor(
    private readonly store: Store,
    private readonly name: string,
    private readonly perMinute: number,
    private readonly burst: number,
    private readonly logger: Logger,
  ) {
    this.#perMs = perMinute / 60_000;
    this.#fullMs = Math.ceil((burst / perMinute) * 60_000);
  }

  async take(key: string, now: number): Promise<number> {
    const bucket = `${this.name}:${createHash('sha256').update(key).digest('hex')}`;
    const t = sql`cast(${now} as bigint)`;
    const least = this.store.dialect === 'postgres' ? sql`least` : sql`min`;
    const greatest = this.store.dialect === 'postgres' ? sql`greatest` : sql`max`;
    const refilled = sql`${least}(cast(${this.burst} as double precision), rate_buckets.tokens + ${greatest}(cast(0 as bigint), ${t} - rate_buckets.updated_at) * cast(${this.#perMs} as double precision))`;
    const r = await sql<{ tokens: number | string; granted: number | string }>`
      insert into rate_buckets (bucket, tokens, updated_at, granted)
      values (${bucket}, cast(${this.burst - 1} as double precision), ${t}, 1)
      on conflict (bucket) do update set
        tokens = case when ${refilled} >= 1 then ${refilled} - 1 else ${refilled} end,
        granted = case when ${refilled} >= 1 then 1 else 0 end,
        updated_at = ${greatest}(rate_buckets.updated_at, ${t})
      returning tokens, granted`.execute(this.store.db);
    this.#sweep(now);
    const row = r.rows[0];
    if (row === undefined || Number(row.granted) === 1) return 0;
    return Math.max(1, Math.ceil(((1 - Number(row.tokens)) * 60_000) / this.perMinute));
  }

  #sweep(now: number): void {
    if (now - this.#lastSweep < SWEEP_EVERY_MS) return;
    this.#lastSweep = now;
    // Only this limiter's buckets: another limiter may refill more slowly.
    void this.store.db
      .deleteFrom('rate_buckets')
      .where('bucket', 'like', `${this.name}:%`)
      .where('updated_at', '<', now - this.#fullMs)
      .execute()
      .catch((err: unknown) => this.logger.warn({ err }, 'rate bucket sweep failed'));
  }
}
