import type { FastifyInstance } from 'fastify';
import type { Clock } from '../../context/clock.js';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import { consoleRoutes } from '../../http/routes/console-routes.js';
import type { Store } from '../../store/open-store.js';
import type { TokenService } from '../auth/token-service.js';
import { loadConsoleAssets, type ConsoleAssets } from './console-assets.js';
import { ConsoleSessions } from './session-service.js';

/** A console session lasts a working shift; then the operator signs in again with the token. */
export const CONSOLE_SESSION_TTL_MS = 8 * 3_600_000;

export interface ConsoleModule {
  readonly sessions: ConsoleSessions;
  readonly assets: ConsoleAssets;
  /** Registers `/` and `/assets/*` on the operator app (outside /v1: the page itself needs no credential). */
  register(app: FastifyInstance): Promise<void>;
  /** Devices connected now (the overview's "online now"); null until a gateway counts them. */
  online(): number | null;
  countOnline(counter: () => number): void;
  start(): void;
  stop(): void;
}

export function createConsoleModule(deps: { store: Store; uow: UnitOfWork; tokens: TokenService; clock: Clock; ttlMs?: number; dir?: string }): ConsoleModule {
  const sessions = new ConsoleSessions(deps.store, deps.uow, deps.tokens, deps.clock, deps.ttlMs ?? CONSOLE_SESSION_TTL_MS);
  const assets = loadConsoleAssets(deps.dir);
  let counter: (() => number) | null = null;
  return {
    sessions,
    assets,
    register: async (app) => {
      await app.register(consoleRoutes, { assets });
    },
    online: () => (counter === null ? null : counter()),
    countOnline: (c) => {
      counter = c;
    },
    start: () => sessions.start(),
    stop: () => sessions.stop(),
  };
}
