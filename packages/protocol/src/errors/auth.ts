import type { Catalogue } from './error-spec.js';

export const authErrors = {
  TOKEN_NOT_FOUND: { status: 404, message: 'No such API token.' },
  TOKEN_ALREADY_REVOKED: { status: 409, message: 'The API token is already revoked.' },
  LAST_ADMIN_TOKEN: { status: 409, message: 'Refusing to revoke the last active admin token.' },
  WEBHOOK_NOT_FOUND: { status: 404, message: 'No such webhook.' },
  WEBHOOK_URL_REFUSED: { status: 400, message: 'The webhook URL is not allowed.' },
  WEBHOOK_DESTINATION_REFUSED: { status: 400, message: 'The webhook URL leads to an internal, reserved or otherwise refused address.' },
  AUDIT_CHAIN_BROKEN: { status: 409, message: 'The audit hash chain does not verify.' },
} as const satisfies Catalogue;
