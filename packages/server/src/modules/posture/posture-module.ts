import type { Logger } from 'pino';
import type { Clock } from '../../context/clock.js';
import type { Store } from '../../store/open-store.js';
import { caChecks } from './ca-checks.js';
import { pendingProviders } from './pending-providers.js';
import { sqlProvider, type PostureProvider } from './posture-provider.js';
import { PostureService } from './posture-service.js';
import { provisioningChecks } from './provisioning-checks.js';
import { registryChecks } from './registry-checks.js';

export interface PostureModule {
  readonly service: PostureService;
  /** Adds or replaces a family of checks (the attestation and release modules at merge). */
  register(provider: PostureProvider): void;
}

/** Builds the posture audit with every family this build has; nothing to start or stop (it only reads). */
export function createPostureModule(deps: { store: Store; clock: Clock; logger: Pick<Logger, 'error'> }): PostureModule {
  const service = new PostureService(deps.clock, deps.logger);
  service.register(sqlProvider('registry', deps.store.db, registryChecks));
  service.register(sqlProvider('ca', deps.store.db, caChecks));
  service.register(sqlProvider('provisioning', deps.store.db, provisioningChecks));
  for (const p of pendingProviders()) service.register(p);
  return { service, register: (p) => service.register(p) };
}
