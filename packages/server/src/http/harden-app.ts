import { randomUUID } from 'node:crypto';
import { NAME_MAX_LENGTH } from '@fleetkey/protocol';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { clientErrorHandler, frameworkErrors } from './error-handler.js';
import { installInputGuard } from './input-guard.js';
import { installStrictJson } from './json-body.js';
import { logSerializers } from './log-redaction.js';
import { requireRouteSchemas } from './route-schemas.js';
import { validatorCompiler } from './validators.js';
import './fastify-types.js';

export interface HardeningOptions {
  readonly logger: FastifyBaseLogger;
  readonly bodyLimitBytes: number;
  readonly requestTimeoutMs: number;
}

/**
 * The server options every listener of ours is built with (operator API and device plane alike):
 * what a peer sends is bounded and refused with catalogue bodies before any route runs.
 */
export function hardenedServerOptions(o: HardeningOptions) {
  const logger = o.logger.child({}, { serializers: logSerializers });
  return {
    // Request log lines carry the path and the query's parameter names, never a query value.
    loggerInstance: logger,
    bodyLimit: o.bodyLimitBytes,
    // The longest legal path parameter is a name (NAME_MAX_LENGTH); up to twice that the schema
    // answers (VALIDATION_FAILED), past it the router does (URI_TOO_LONG). Node's 16 KiB header
    // limit bounds the whole request line (HEADERS_TOO_LARGE).
    routerOptions: { maxParamLength: 2 * NAME_MAX_LENGTH },
    frameworkErrors,
    clientErrorHandler: clientErrorHandler(logger),
    requestTimeout: o.requestTimeoutMs,
    // Node checks request deadlines on this interval (default 30 s): a 408 should come close to the deadline.
    http: { headersTimeout: o.requestTimeoutMs, requestTimeout: o.requestTimeoutMs, connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(o.requestTimeoutMs / 4))) },
    // Request ids are ours (CSPRNG), never taken from a client header, so audit entries cannot be
    // made to carry an attacker-chosen id.
    genReqId: () => randomUUID(),
    requestIdHeader: false as const,
    onProtoPoisoning: 'error' as const,
    onConstructorPoisoning: 'error' as const,
    return503OnClosing: true,
  };
}

/**
 * Installs, before any route is registered, the checks every request of the app goes through:
 * schemas required on every route (boot fails otherwise), strict validators, strict JSON as the
 * only body type, the input guard (NUL, lone surrogates, inexact numbers, repeated parameters),
 * and the request id and no-store on every answer.
 */
export function hardenApp(app: FastifyInstance): void {
  app.setValidatorCompiler(validatorCompiler);
  requireRouteSchemas(app);
  installStrictJson(app);
  installInputGuard(app);
  app.decorateRequest('actor', null);
  app.decorateRequest('consoleSession', null);
  app.addHook('onSend', async (req, reply) => {
    reply.header('x-request-id', req.id);
    reply.header('cache-control', 'no-store');
  });
}
