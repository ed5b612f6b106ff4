import { FleetkeyError, NoQuery } from '@fleetkey/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { Clock } from '../../context/clock.js';
import { auditedErrors } from '../../context/unit-of-work.js';
import { allows } from '../../modules/auth/policy.js';
import type { RefusalAudit } from '../../modules/auth/refusal-audit.js';
import type { TokenService } from '../../modules/auth/token-service.js';
import type { FleetkeyMetrics } from '../../modules/metrics/metrics.js';
import type { Readiness } from '../../modules/metrics/readiness.js';
import { rateLimited, type RequestLimits } from '../auth-hook.js';
import { catalogueBody } from '../error-handler.js';
import { requestContext } from '../request-context.js';

const BEARER = /^Bearer ([!-~]{1,200})$/;

export interface OpsRouteDeps {
  readonly metrics: FleetkeyMetrics | null;
  /** True for a source address in `metrics.allowNetworks`. */
  readonly allowedNetwork: (ip: string) => boolean;
  readonly readiness: Readiness;
  readonly tokens: TokenService;
  readonly refusals: RefusalAudit;
  readonly limits: RequestLimits;
  readonly clock: Clock;
}

const Checks = Type.Record(Type.String(), Type.String());
const Ready = Type.Object({ status: Type.Literal('ready'), checks: Checks }, { additionalProperties: false });
const NotReady = Type.Object({ code: Type.Literal('NOT_READY'), message: Type.String(), requestId: Type.String(), checks: Checks }, { additionalProperties: false });

/**
 * Operations endpoints beside `/healthz` (liveness): `/readyz` (the store answers and every
 * listener is up; 503 NOT_READY with the failing checks otherwise) and `/metrics` (Prometheus
 * text). Metrics need a token with metrics:read, or a source in an allowed network; refusals are
 * audited like the API's.
 */
export const opsRoutes: FastifyPluginAsyncTypebox<OpsRouteDeps> = async (app, deps) => {
  app.get('/readyz', { schema: { hide: true, querystring: NoQuery, response: { 200: Ready, 503: NotReady } } }, async (req, reply) => {
    const r = await deps.readiness.check();
    if (r.ready) return { status: 'ready' as const, checks: r.checks };
    // Check names and short reasons only (an error code, "not listening"): no addresses, no credentials.
    const body = catalogueBody('NOT_READY', req.id);
    return reply.status(503).type('application/json').send({ code: 'NOT_READY' as const, message: body.message, requestId: body.requestId, checks: r.checks });
  });

  const metrics = deps.metrics;
  if (metrics === null) return;

  const refuse = async (req: FastifyRequest, err: FleetkeyError, action: string, reason: string): Promise<never> => {
    await deps.refusals.record(requestContext(req), { action, subject: 'route:GET /metrics', outcome: 'refused', code: err.code, detail: { reason, source: req.ip } });
    auditedErrors.add(err);
    throw err;
  };

  app.get('/metrics', { schema: { hide: true, querystring: NoQuery } }, async (req, reply) => {
    req.actor = null;
    const now = deps.clock.now();
    const sourceWait = await deps.limits.perSource.take(`ip:${req.ip}`, now);
    if (sourceWait > 0) return refuse(req, rateLimited(sourceWait, 'source address over its request rate'), 'http.rate_limited', 'per-source limit');
    const header = req.headers.authorization;
    // An allowed network scrapes without a token; a token, when sent, is checked all the same.
    if (header !== undefined || !deps.allowedNetwork(req.ip)) {
      const m = header === undefined ? null : BEARER.exec(header);
      if (m === null || m[1] === undefined) {
        const reason = header === undefined ? 'no credential' : 'malformed credential';
        return refuse(req, new FleetkeyError('UNAUTHENTICATED', { detail: reason }), 'auth.unauthenticated', reason);
      }
      const actor = await deps.tokens.authenticate(m[1]);
      if (actor === null) return refuse(req, new FleetkeyError('UNAUTHENTICATED', { detail: 'unknown or revoked token' }), 'auth.unauthenticated', 'unknown or revoked token');
      req.actor = actor;
      const tokenWait = await deps.limits.perToken.take(`token:${actor.label}`, now);
      if (tokenWait > 0) return refuse(req, rateLimited(tokenWait, 'token over its request rate'), 'http.rate_limited', 'per-token limit');
      if (actor.kind !== 'token' || !allows(actor.role, 'metrics:read')) {
        const reason = `role ${actor.kind === 'token' ? actor.role : actor.kind} lacks metrics:read`;
        return refuse(req, new FleetkeyError('FORBIDDEN', { detail: reason }), 'auth.forbidden', reason);
      }
    }
    const text = await metrics.text();
    return reply.type(metrics.contentType).header('cache-control', 'no-store').send(text);
  });
};
