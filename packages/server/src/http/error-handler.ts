import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { ERRORS, FleetkeyError, type ErrorBody, type ErrorCode } from '@fleetkey/protocol';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditLog } from '../modules/audit/audit-log.js';
import { auditedErrors } from '../context/unit-of-work.js';
import { scrubSecrets } from './log-redaction.js';
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
    case 'FST_ERR_BAD_URL':
      return 'BAD_REQUEST';
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return 'URI_TOO_LONG';
    default:
      break;
  }
  // secure-json-parse rejects __proto__/constructor.prototype keys with a plain 400.
  if (err.statusCode === 400) return err instanceof SyntaxError ? 'MALFORMED_JSON' : 'VALIDATION_FAILED';
  if (err.statusCode === 415) return 'UNSUPPORTED_MEDIA_TYPE';
  return null;
}

export function catalogueBody(code: ErrorCode, requestId: string): ErrorBody {
  return { code, message: ERRORS[code].message, requestId };
}

/**
 * Maps every error onto the catalogue. `refusals`, when given, audits 4xx refusals of
 * authenticated callers in aggregate (the operator plane); without it each is its own entry.
 */
export function installErrorHandlers(app: FastifyInstance, audit: AuditLog, refusals?: { record: AuditLog['record'] }): void {
  const sink = refusals ?? audit;
  app.setErrorHandler(async (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    let code: ErrorCode;
    let details: ErrorBody['details'];
    let movedTo: string | undefined;
    if (err instanceof FleetkeyError) {
      code = err.code;
      const m = err.extra?.['movedTo'];
      if (typeof m === 'string') movedTo = m;
      // A detail can quote the request (a name that looks like a token): scrubbed like URLs.
      req.log.info({ code, detail: err.detail === undefined ? undefined : scrubSecrets(err.detail) }, 'request refused');
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
      // The framework's message can quote the request (FST_ERR_BAD_URL quotes the URL): log its code only.
      else req.log.info({ code, cause: err.code, ...(details === undefined ? {} : { details }) }, 'request refused');
    }
    const spec = ERRORS[code];
    if (req.actor !== null && spec.status < 500 && !auditedErrors.has(err)) {
      await sink.record(requestContext(req), {
        action: `http.${req.method.toLowerCase()} ${req.routeOptions.url ?? 'unknown'}`,
        outcome: 'refused',
        code,
        detail: { status: spec.status },
      });
    }
    const body = catalogueBody(code, req.id);
    if (details !== undefined) body.details = details;
    if (movedTo !== undefined) body.movedTo = movedTo;
    if (reply.getHeader('retry-after') === undefined && err instanceof FleetkeyError && typeof err.extra?.['retryAfterSeconds'] === 'number') {
      reply.header('retry-after', String(err.extra['retryAfterSeconds']));
    }
    return reply.status(spec.status).type('application/json').send(body);
  });

  app.setNotFoundHandler((req, reply) => reply.status(404).send(catalogueBody('ROUTE_NOT_FOUND', req.id)));
}

/**
 * Errors fastify raises before a route is found (a URL that does not decode, a path parameter
 * past the router's limit): fastify's own body quotes the URL back; ours is the catalogue's.
 */
export function frameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const code: ErrorCode = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'URI_TOO_LONG' : 'BAD_REQUEST';
  req.log.info({ code, cause: err.code }, 'request refused');
  void reply.status(ERRORS[code].status).type('application/json').send(catalogueBody(code, req.id));
}

/**
 * Refusals by node's HTTP parser, before fastify sees a request (node's `clientError` event):
 * oversized headers (431), a request not received within the timeout (408), anything else it
 * cannot parse (400). Answered with a catalogue body and closed. The error itself is not
 * logged whole: its rawPacket holds the request bytes, Authorization header included.
 */
export function clientErrorHandler(log: { info(o: object, m: string): void }) {
  return (err: Error & { code?: string }, socket: Socket): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const code: ErrorCode = err.code === 'HPE_HEADER_OVERFLOW' ? 'HEADERS_TOO_LARGE' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'REQUEST_TIMEOUT' : 'BAD_REQUEST';
    const requestId = randomUUID();
    log.info({ code, cause: err.code, requestId, remoteAddress: socket.remoteAddress }, 'request refused by the HTTP parser');
    const body = JSON.stringify(catalogueBody(code, requestId));
    const status = ERRORS[code].status;
    if (socket.writable) {
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
          `x-request-id: ${requestId}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`,
        () => socket.destroy(),
      );
    } else socket.destroy();
  };
}
