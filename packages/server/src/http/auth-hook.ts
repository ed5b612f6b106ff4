import { FleetkeyError } from '@fleetkey/protocol';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Clock } from '../context/clock.js';
import type { Actor } from '../context/op-context.js';
import type { RateLimitStore } from '../context/rate-limiter.js';
import { allows } from '../modules/auth/policy.js';
import type { RefusalAudit } from '../modules/auth/refusal-audit.js';
import type { TokenService } from '../modules/auth/token-service.js';
import { auditedErrors } from '../context/unit-of-work.js';
import { requestContext } from './request-context.js';
import { ConsoleSessions } from '../modules/console/session-service.js';
import { readSessionCookie, sameOrigin } from './console-cookie.js';

const BEARER = /^Bearer ([!-~]{1,200})$/;

export interface RequestLimits {
  /** Budget per source address, spent before the credential is even looked at. */
  readonly perSource: RateLimitStore;
  /** Budget per API token (all its sources together). */
  readonly perToken: RateLimitStore;
}

/** 429 RATE_LIMITED with Retry-After (RFC 9110 §10.2.3, in seconds, rounded up). */
export function rateLimited(retryAfterMs: number, detail: string): FleetkeyError {
  return new FleetkeyError('RATE_LIMITED', { detail, extra: { retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)) } });
}

/**
 * Operator-plane authentication as a scoped hook: every route registered in this scope needs a
 * bearer token and declares its permission, or it cannot even be registered (fail closed).
 */
export function installOperatorAuth(
  scope: FastifyInstance,
  deps: { tokens: TokenService; refusals: RefusalAudit; limits: RequestLimits; clock: Clock; sessions?: ConsoleSessions },
): void {
  scope.addHook('onRoute', (route) => {
    if (route.config?.permission === undefined) {
      throw new Error(`route ${route.method} ${route.url} declares no permission`);
    }
  });

  const refuse = async (req: FastifyRequest, err: FleetkeyError, action: string, reason: string) => {
    await deps.refusals.record(requestContext(req), {
      action,
      subject: `route:${req.method} ${req.routeOptions.url ?? 'unknown'}`,
      outcome: 'refused',
      code: err.code,
      detail: { reason, source: req.ip },
    });
    // Already audited above (in aggregate); the error handler must not write it again.
    auditedErrors.add(err);
    throw err;
  };

  scope.addHook('onRequest', async (req) => {
    req.actor = null;
    const now = deps.clock.now();
    const sourceWait = await deps.limits.perSource.take(`ip:${req.ip}`, now);
    if (sourceWait > 0) return refuse(req, rateLimited(sourceWait, 'source address over its request rate'), 'http.rate_limited', 'per-source limit');
    const header = req.headers.authorization;
    req.consoleSession = null;
    const cookie = header === undefined && deps.sessions !== undefined ? readSessionCookie(req) : undefined;
    if (cookie !== undefined && deps.sessions !== undefined) {
      // The console: the same permission check below applies to the session's token and role.
      const session = await deps.sessions.authenticate(cookie);
      if (session === null) return refuse(req, new FleetkeyError('UNAUTHENTICATED', { detail: 'unknown or expired session' }), 'auth.unauthenticated', 'unknown or expired session');
      const safe = req.method === 'GET' || req.method === 'HEAD';
      if (!safe && (!sameOrigin(req) || !ConsoleSessions.csrfMatches(session, headerValue(req.headers['x-csrf-token'])))) {
        const reason = sameOrigin(req) ? 'missing or wrong CSRF token' : 'cross-origin request';
        return refuse(req, new FleetkeyError('CSRF_REFUSED', { detail: reason }), 'auth.csrf_refused', reason);
      }
      req.consoleSession = session;
      return authorize(req, session.actor, now);
    }
    const m = header === undefined ? null : BEARER.exec(header);
    if (m === null || m[1] === undefined) {
      const reason = header === undefined ? 'no credential' : 'malformed credential';
      return refuse(req, new FleetkeyError('UNAUTHENTICATED', { detail: reason }), 'auth.unauthenticated', reason);
    }
    const actor = await deps.tokens.authenticate(m[1]);
    if (actor === null) return refuse(req, new FleetkeyError('UNAUTHENTICATED', { detail: 'unknown or revoked token' }), 'auth.unauthenticated', 'unknown or revoked token');
    return authorize(req, actor, now);
  });

  const authorize = async (req: FastifyRequest, actor: Actor, now: number) => {
    req.actor = actor;
    const tokenWait = await deps.limits.perToken.take(`token:${actor.label}`, now);
    if (tokenWait > 0) return refuse(req, rateLimited(tokenWait, 'token over its request rate'), 'http.rate_limited', 'per-token limit');
    const permission = req.routeOptions.config.permission;
    if (permission === undefined || actor.kind !== 'token' || !allows(actor.role, permission)) {
      const reason = `role ${actor.kind === 'token' ? actor.role : actor.kind} lacks ${permission ?? 'a declared permission'}`;
      return refuse(req, new FleetkeyError('FORBIDDEN', { detail: reason }), 'auth.forbidden', reason);
    }
    return undefined;
  };
}

const headerValue = (v: string | string[] | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
