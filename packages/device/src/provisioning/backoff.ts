import { setTimeout as sleep } from 'node:timers/promises';
import { ProvisioningGaveUpError, TransientProvisioningError } from './errors.js';

/**
 * Bounds for retrying transient failures. A fleet that lost its backend comes back all at once;
 * full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter", 2015) spreads the
 * retries of thousands of devices uniformly instead of in synchronised waves.
 */
export interface RetryPolicy {
  /** Total attempts including the first (≥ 1). */
  maxAttempts: number;
  /** Delay cap of the first retry; doubles per attempt. */
  baseDelayMs: number;
  /** Cap on any single delay, including a server's Retry-After. */
  maxDelayMs: number;
  /** Give up rather than start a wait that would end after this much time since the first attempt. */
  maxElapsedMs: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = {
  maxAttempts: 8,
  baseDelayMs: 500,
  maxDelayMs: 60_000,
  maxElapsedMs: 10 * 60_000,
};

export interface RetryHooks {
  /** Uniform in [0, 1); injectable so a test can pin the jitter. */
  random?: () => number;
  /** Called before each attempt (1-based). */
  onAttempt?: (attempt: number) => void;
  /** Called after a transient failure, with the delay chosen before the next attempt. */
  onRetry?: (info: { attempt: number; delayMs: number; error: TransientProvisioningError }) => void;
  /** Aborts the waits (and the loop) early. */
  signal?: AbortSignal;
}

export function checkRetryPolicy(p: RetryPolicy): void {
  const ok = (v: number, min: number): boolean => Number.isFinite(v) && v >= min;
  if (!Number.isInteger(p.maxAttempts) || p.maxAttempts < 1) throw new RangeError('maxAttempts must be an integer ≥ 1');
  if (!ok(p.baseDelayMs, 0) || !ok(p.maxDelayMs, 0) || !ok(p.maxElapsedMs, 0)) throw new RangeError('retry delays must be finite and ≥ 0');
}

/**
 * Full jitter: sleep = random(0, min(cap, base · 2^(attempt−1))). A server's Retry-After is a
 * floor (it asked for at least that long), still bounded by the cap.
 */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number, retryAfterMs?: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt - 1, 30));
  const jittered = Math.floor(random() * ceiling);
  return Math.min(policy.maxDelayMs, Math.max(jittered, retryAfterMs ?? 0));
}

/**
 * Runs `fn` until it resolves, throws a non-transient error (rethrown as is: a refusal stops the
 * loop at once), or the budget is spent (→ ProvisioningGaveUpError carrying the last cause).
 */
export async function withRetries<T>(fn: (attempt: number) => Promise<T>, policy: RetryPolicy, hooks: RetryHooks = {}): Promise<T> {
  checkRetryPolicy(policy);
  const random = hooks.random ?? Math.random;
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    hooks.signal?.throwIfAborted();
    hooks.onAttempt?.(attempt);
    try {
      return await fn(attempt);
    } catch (e) {
      if (!(e instanceof TransientProvisioningError)) throw e;
      const elapsed = Date.now() - started;
      const delayMs = backoffDelay(attempt, policy, random, e.retryAfterMs);
      if (attempt >= policy.maxAttempts || elapsed + delayMs > policy.maxElapsedMs) {
        throw new ProvisioningGaveUpError(e.code, attempt, elapsed, `gave up after ${attempt} attempt(s): ${e.message}`, e);
      }
      hooks.onRetry?.({ attempt, delayMs, error: e });
      await sleep(delayMs, undefined, hooks.signal === undefined ? undefined : { signal: hooks.signal });
    }
  }
}
