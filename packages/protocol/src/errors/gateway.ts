import type { Catalogue } from './error-spec.js';

export const gatewayErrors = {
  GATEWAY_TLS_REQUIRED: { status: 500, message: 'The device gateway needs TLS unless insecure mode is set explicitly.' },
  GATEWAY_TOPIC_INVALID: { status: 400, message: 'The device id or command id does not form a valid gateway topic.' },
  GATEWAY_DEVICE_OFFLINE: { status: 409, message: 'The device has no live gateway session.' },
  GATEWAY_COMMAND_QUEUE_FULL: { status: 503, message: 'The device has too many commands in flight; retry later.' },
  GATEWAY_CLOSED: { status: 503, message: 'The device gateway is shutting down.' },
} as const satisfies Catalogue;
