import type { PostureFinding, PostureGap, PostureQuery, PostureReport } from '@fleetkey/protocol';
import type { Logger } from 'pino';
import { iso, type Clock } from '../../context/clock.js';
import { UnavailableProvider, type PostureParams, type PostureProvider } from './posture-provider.js';

const DEFAULT_EXPIRING_DAYS = 30;
const DEFAULT_ID_LIMIT = 100;

/**
 * The fleet posture audit: a registry of finding providers, run in registration order. Reading
 * only; it changes nothing and so writes no audit entry. A provider that throws is reported under
 * `notChecked` (its error goes to the log, not to the caller), never as "nothing found".
 */
export class PostureService {
  readonly #providers = new Map<string, PostureProvider>();

  constructor(
    private readonly clock: Clock,
    private readonly logger: Pick<Logger, 'error'>,
  ) {}

  /** Adds a provider, or replaces the one of the same name (a module replacing its placeholder). */
  register(provider: PostureProvider): void {
    this.#providers.set(provider.name, provider);
  }

  providers(): readonly PostureProvider[] {
    return [...this.#providers.values()];
  }

  async report(q: PostureQuery = {}): Promise<PostureReport> {
    const now = this.clock.now();
    const params: PostureParams = { now, expiringDays: q.expiringDays ?? DEFAULT_EXPIRING_DAYS, idLimit: q.idLimit ?? DEFAULT_ID_LIMIT };
    const findings: PostureFinding[] = [];
    const notChecked: PostureGap[] = [];
    for (const p of this.#providers.values()) {
      if (p instanceof UnavailableProvider) {
        notChecked.push({ provider: p.name, reason: p.reason, findings: [...p.findingIds] });
        continue;
      }
      try {
        findings.push(...(await p.run(params)));
      } catch (e) {
        this.logger.error({ err: e, provider: p.name }, 'posture provider failed');
        notChecked.push({ provider: p.name, reason: 'the check failed (see the server log)', findings: [...p.findingIds] });
      }
    }
    return { generatedAt: iso(now), expiringDays: params.expiringDays, findings, notChecked };
  }
}
