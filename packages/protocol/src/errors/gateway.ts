import type { Catalogue } from './error-spec.js';

export const gatewayErrors = {
  GATEWAY_TLS_REQUIRED: { status: 500, message: 'The device gateway needs TLS unless insecure mode is set explicitly.' },
  GATEWAY_TOPIC_INVALID: { status: 400, message: 'The device id or command id does not form a valid gateway topic.' },
} as const satisfies Catalogue;
