import type { Catalogue } from './error-spec.js';

/** Operations: readiness and metrics (issue 14). */
export const operationsErrors = {
  NOT_READY: { status: 503, message: 'The server is not ready: a dependency or listener is down.' },
} as const satisfies Catalogue;
