import { FleetkeyError } from '@fleetkey/protocol';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Clock } from '../context/clock.js';
import type { AuditLog } from '../modules/audit/audit-log.js';
import { allows } from '../modules/auth/policy.js';
import type { RefusalLimiter } from '../modules/auth/refusal-limiter.js';
import type { TokenService } from '../modules/auth/token-service.js';
import { requestContext } from './request-context.js';

const BEARER = /^Bearer ([!-~]{1,200})$/;

/**
 * Operator-plane authentication as a scoped hook: every route registered in this scope needs a
 * bearer token and declares its permission, or it cannot even be registered (fail closed).
 */
export function installOperatorAuth(
  scope: FastifyInstance,
  deps: { tokens: TokenService; audit: AuditLog; limiter: RefusalLimiter; clock: Clock },
): void {
  scope.addHook('onRoute', (route) => {
    if (route.config?.permission === undefined) {
      throw new Error(`route ${route.method} ${route.url} declares no permission`);
    }
  });

  const refuse = async (req: FastifyRequest, code: 'UNAUTHENTICATED' | 'FORBIDDEN', reason: string) => {
    const suppressed = deps.limiter.take(req.ip, deps.clock.now());
    if (suppressed !== null) {
      await deps.audit.record(requestContext(req), {
        action: code === 'UNAUTHENTICATED' ? 'auth.unauthenticated' : 'auth.forbidden',
        subject: `route:${req.method} ${req.routeOptions.url ?? req.url.split('?')[0]}`,
        outcome: 'refused',
        code,
        detail: { reason, source: req.ip, ...(suppressed > 0 ? { suppressedBefore: suppressed } : {}) },
      });
    }
    // Already audited above (rate-limited); the error handler must not write it again.
    const actor = req.actor;
    req.actor = null;
    const err = new FleetkeyError(code, { detail: reason });
    if (actor !== null) req.log.info({ actor: actor.label }, 'forbidden');
    throw err;
  };

  scope.addHook('onRequest', async (req) => {
    req.actor = null;
    const header = req.headers.authorization;
    const m = header === undefined ? null : BEARER.exec(header);
    if (m === null || m[1] === undefined) return refuse(req, 'UNAUTHENTICATED', header === undefined ? 'no credential' : 'malformed credential');
    const actor = await deps.tokens.authenticate(m[1]);
    if (actor === null) return refuse(req, 'UNAUTHENTICATED', 'unknown or revoked token');
    req.actor = actor;
    const permission = req.routeOptions.config.permission;
    if (permission === undefined || actor.kind !== 'token' || !allows(actor.role, permission)) {
      return refuse(req, 'FORBIDDEN', `role ${actor.kind === 'token' ? actor.role : actor.kind} lacks ${permission ?? 'a declared permission'}`);
    }
  });
}
