import type { Catalogue } from './error-spec.js';

/** The web console's sign-in sessions (issue 14). */
export const consoleErrors = {
  CSRF_REFUSED: {
    status: 403,
    message: 'A request made with a console session cookie must come from the console itself (same origin and its CSRF token header).',
  },
  CONSOLE_SESSION_REQUIRED: { status: 400, message: 'This action needs a console session cookie, not a bearer token.' },
  SIGN_IN_NEEDS_TOKEN: { status: 400, message: 'A console session is opened with an API token (Authorization: Bearer), not with another session.' },
} as const satisfies Catalogue;
