import { ERRORS, FleetkeyError, type ErrorBody, type ErrorCode } from '@fleetkey/protocol';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditLog } from '../modules/audit/audit-log.js';
import { auditedErrors } from '../context/unit-of-work.js';
import { requestContext } from './request-context.js';

/** Fastify's own refusals, mapped onto the catalogue so callers only ever see our codes. */
function fastifyCode(err: FastifyError): ErrorCode | null {
  if (err.validation !== undefined) return 'VALIDATION_FAILED';
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'BODY_TOO_LARGE';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'UNSUPPORTED_MEDIA_TYPE';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'MALFORMED_JSON';
    default:
      break;
  }
  // secure-json-parse rejects __proto__/constructor.prototype keys with a plain 400.
  if (err.statusCode === 400) return err instanceof SyntaxError ? 'MALFORMED_JSON' : 'VALIDATION_FAILED';
  if (err.statusCode === 415) return 'UNSUPPORTED_MEDIA_TYPE';
  return null;
}

export function installErrorHandlers(app: FastifyInstance, audit: AuditLog): void {
  app.setErrorHandler(async (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    let code: ErrorCode;
    let details: ErrorBody['details'];
    let movedTo: string | undefined;
    if (err instanceof FleetkeyError) {
      code = err.code;
      const m = err.extra?.['movedTo'];
      if (typeof m === 'string') movedTo = m;
      req.log.info({ code, detail: err.detail }, 'request refused');
    } else {
      const mapped = fastifyCode(err);
      code = mapped ?? 'INTERNAL';
      if (err.validation !== undefined) {
        // Schema paths and messages only; never echo the offending value back.
        details = err.validation.slice(0, 10).map((v) => ({
          path: `${err.validationContext ?? ''}${v.instancePath}`,
          message: v.message ?? 'invalid',
        }));
      }
      if (mapped === null) req.log.error({ err }, 'unhandled error');
      else req.log.info({ code, reason: err.message }, 'request refused');
    }
    const spec = ERRORS[code];
    if (req.actor !== null && spec.status < 500 && !auditedErrors.has(err)) {
      await audit.record(requestContext(req), {
        action: `http.${req.method.toLowerCase()} ${req.routeOptions.url ?? 'unknown'}`,
        outcome: 'refused',
        code,
        detail: { status: spec.status },
      });
    }
    const body: ErrorBody = { code, message: spec.message, requestId: req.id };
    if (details !== undefined) body.details = details;
    if (movedTo !== undefined) body.movedTo = movedTo;
    return reply.status(spec.status).type('application/json').send(body);
  });

  app.setNotFoundHandler((req, reply) => {
    const body: ErrorBody = { code: 'ROUTE_NOT_FOUND', message: ERRORS.ROUTE_NOT_FOUND.message, requestId: req.id };
    return reply.status(404).send(body);
  });
}
