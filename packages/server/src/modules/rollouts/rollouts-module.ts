import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Clock } from '../../context/clock.js';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import type { Store } from '../../store/open-store.js';
import type { EventBus } from '../events/event-bus.js';
import type { DesiredReleasesPort } from './desired-releases.js';
import { RolloutEngine, type UpdateReport } from './rollout-engine.js';
import { rolloutRoutes } from './rollout-routes.js';
import { RolloutService } from './rollout-service.js';

export interface RolloutsModule {
  readonly service: RolloutService;
  readonly engine: RolloutEngine;
  /** Registers /rollouts on the operator plane's /v1 scope. */
  routes(v1: FastifyInstance): Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

export interface RolloutsDeps {
  readonly store: Store;
  readonly uow: UnitOfWork;
  readonly bus: EventBus;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly tickIntervalMs: number;
  /** The releases module's DesiredReleases, through the port (desiredReleasesPort). */
  readonly desired: DesiredReleasesPort;
}

/** The rollouts module: service (operator side), engine (ticker + device reports), routes. */
export function createRolloutsModule(d: RolloutsDeps): RolloutsModule {
  const desired = d.desired;
  const service = new RolloutService(d.store, d.uow, desired);
  const engine = new RolloutEngine(d.store, d.uow, desired, d.clock, d.logger, d.tickIntervalMs);
  service.onChange = () => engine.kick();
  let unsubscribe: (() => void) | null = null;
  return {
    service,
    engine,
    routes: async (v1) => {
      await v1.register(rolloutRoutes, { rollouts: service });
    },
    start: () => {
      // The gateway's `device.update_reported` (issue 12 contract), after its store commit.
      unsubscribe = d.bus.subscribe((e) => {
        if ((e.type as string) !== 'device.update_reported') return;
        engine.onReport(e.payload as unknown as UpdateReport).catch((err: unknown) => d.logger.error({ err }, 'rollout report failed'));
      });
      engine.start();
    },
    stop: async () => {
      unsubscribe?.();
      await engine.stop();
    },
  };
}
