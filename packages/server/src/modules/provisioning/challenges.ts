import { randomBytes } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import type { Logger } from 'pino';
import type { Clock } from '../../context/clock.js';
import { auditedErrors } from '../../context/unit-of-work.js';
import type { Store } from '../../store/open-store.js';

export const NONCE_TTL_MS = 5 * 60_000;

/**
 * A row is deleted this long after it expired, not at once: another server node whose clock is
 * behind ours still treats it as unexpired (a `sas` row there is the replay guard of a token it
 * would still accept), and every check of a challenge also refuses it once expired.
 */
export const SWEEP_GRACE_MS = 5 * 60_000;

export interface ChallengeLimits {
  /** Unexpired, unused nonces outstanding at once, over all sources (this database). */
  readonly maxOutstanding: number;
  /** Unexpired nonces issued to one source address and not yet expired (this node). */
  readonly maxOutstandingPerSource: number;
  readonly sweepIntervalMs: number;
}

/**
 * The provisioning challenges (`provisioning_challenges`): nonces for IDevID possession, TPM
 * credential challenges and the ids of used symmetric tokens (`sas`). The nonce route answers
 * anyone, so what it may store is capped, and every expired row is swept: the table holds at
 * most what is unexpired, whatever the number of sources asking.
 */
export class ProvisioningChallenges {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | null = null;
  /** Per source address: expiry instants of the nonces it was given that are not yet expired. */
  readonly #bySource = new Map<string, number[]>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly limits: ChallengeLimits,
  ) {}

  /** Issues a nonce to `source`, or refuses with RATE_LIMITED past either cap (nothing stored). */
  async issueNonce(source: string): Promise<{ nonce: string; expiresAt: number }> {
    const now = this.clock.now();
    const mine = (this.#bySource.get(source) ?? []).filter((t) => t > now);
    if (mine.length >= this.limits.maxOutstandingPerSource) throw limited(`source ${source}: ${mine.length} nonces outstanding`);
    const row = await this.store.db
      .selectFrom('provisioning_challenges')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('kind', '=', 'nonce')
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirstOrThrow();
    if (Number(row.n) >= this.limits.maxOutstanding) throw limited(`${String(row.n)} nonces outstanding in total`);
    const nonce = randomBytes(32).toString('base64url');
    const expiresAt = now + NONCE_TTL_MS;
    await this.store.db
      .insertInto('provisioning_challenges')
      .values({ id: nonce, kind: 'nonce', device_id: null, enrollment_id: null, secret_sha256: null, expires_at: expiresAt, used_at: null, created_at: now, evidence: null })
      .execute();
    mine.push(expiresAt);
    this.#bySource.set(source, mine);
    return { nonce, expiresAt };
  }

  /** Consumes a nonce: true once, for an unexpired nonce this server issued. */
  async useNonce(nonce: string): Promise<boolean> {
    const now = this.clock.now();
    const used = await this.store.db
      .updateTable('provisioning_challenges')
      .set({ used_at: now })
      .where('id', '=', nonce)
      .where('kind', '=', 'nonce')
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return used.numUpdatedRows === 1n;
  }

  /**
   * Deletes every challenge expired for longer than the grace: nonces and TPM challenges, used
   * or not, and `sas` rows once the token they guard has expired (its expiry is the row's).
   */
  async sweep(): Promise<number> {
    const now = this.clock.now();
    for (const [source, times] of this.#bySource) {
      const left = times.filter((t) => t > now);
      if (left.length === 0) this.#bySource.delete(source);
      else this.#bySource.set(source, left);
    }
    const r = await this.store.db.deleteFrom('provisioning_challenges').where('expires_at', '<=', now - SWEEP_GRACE_MS).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  start(): void {
    this.#timer = setInterval(() => {
      if (this.#running !== null) return;
      this.#running = this.sweep()
        .then(() => undefined)
        .catch((e: unknown) => this.log.error({ err: e }, 'provisioning challenge sweep failed'))
        .finally(() => (this.#running = null));
    }, this.limits.sweepIntervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}

function limited(detail: string): FleetkeyError {
  const err = new FleetkeyError('RATE_LIMITED', { detail });
  // Like the rate limiter's refusals: not one audit entry per refused request (the cap is the bound).
  auditedErrors.add(err);
  return err;
}
