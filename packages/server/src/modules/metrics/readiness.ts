import { sql } from 'kysely';
import type { Store } from '../../store/open-store.js';

export interface ReadinessResult {
  readonly ready: boolean;
  /** Check name → "ok" or a short reason (an error code, "not listening"), never an address or secret. */
  readonly checks: Record<string, string>;
}

/**
 * Readiness (`/readyz`): the store answers a query within the timeout and every listener the
 * config enables is listening. Liveness stays `/healthz` (the process answers at all), so an
 * orchestrator restarts a dead process but only stops sending traffic to one that is not ready.
 */
export class Readiness {
  readonly #listeners = new Map<string, () => boolean>();

  constructor(
    private readonly store: Store,
    private readonly timeoutMs = 2_000,
  ) {}

  /** A listener to check; added as each one starts listening. */
  listener(name: string, listening: () => boolean): void {
    this.#listeners.set(name, listening);
  }

  async check(): Promise<ReadinessResult> {
    const checks: Record<string, string> = { store: await this.#store() };
    for (const [name, listening] of this.#listeners) checks[name] = listening() ? 'ok' : 'not listening';
    return { ready: Object.values(checks).every((v) => v === 'ok'), checks };
  }

  async #store(): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.timeoutMs);
    });
    const query = sql`select 1 as ok`
      .execute(this.store.db)
      .then(() => 'ok')
      .catch((e: unknown) => {
        const code = (e as { code?: unknown }).code;
        return typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code) ? `error ${code}` : 'error';
      });
    try {
      return await Promise.race([query, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
