import type { Catalogue } from './error-spec.js';

export const commonErrors = {
  VALIDATION_FAILED: { status: 400, message: 'The request does not match the schema.' },
  BAD_REQUEST: { status: 400, message: 'The request is not well-formed HTTP.' },
  REQUEST_TIMEOUT: { status: 408, message: 'The request was not received in time.' },
  URI_TOO_LONG: { status: 414, message: 'The request URI is too long.' },
  HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are too large.' },
  BODY_TOO_LARGE: { status: 413, message: 'The request body is too large.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The request body must be application/json.' },
  MALFORMED_JSON: { status: 400, message: 'The request body is not valid JSON.' },
  UNAUTHENTICATED: { status: 401, message: 'Authentication is required.' },
  FORBIDDEN: { status: 403, message: 'The credential does not allow this operation.' },
  NOT_FOUND: { status: 404, message: 'No such resource.' },
  ROUTE_NOT_FOUND: { status: 404, message: 'No such route.' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'The method is not allowed on this route.' },
  CONFLICT: { status: 409, message: 'The resource was changed concurrently; read it again and retry.' },
  RATE_LIMITED: { status: 429, message: 'Too many requests; retry later.' },
  CONFIG_INVALID: { status: 500, message: 'The configuration is invalid.' },
  SECRET_FILE_EXPOSED: { status: 500, message: 'A secret file or the data directory is open to other users; refusing to start.' },
  INTERNAL: { status: 500, message: 'Internal error.' },
  UNAVAILABLE: { status: 503, message: 'The service is not available.' },
} as const satisfies Catalogue;
