import type { Catalogue } from './error-spec.js';

/** Operations: readiness, metrics, key export (issue 14). */
export const operationsErrors = {
  KEY_NOT_EXPORTABLE: { status: 400, message: 'This key cannot leave its keystore.' },
  NOT_READY: { status: 503, message: 'The server is not ready: a dependency or listener is down.' },
} as const satisfies Catalogue;
