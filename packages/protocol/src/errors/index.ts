import { attestationErrors } from './attestation.js';
import { authErrors } from './auth.js';
import { caErrors } from './ca.js';
import { clusterErrors } from './cluster.js';
import { commonErrors } from './common.js';
import { consoleErrors } from './console.js';
import { cryptoErrors } from './crypto.js';
import type { ErrorSpec } from './error-spec.js';
import { gatewayErrors } from './gateway.js';
import { operationsErrors } from './operations.js';
import { postureErrors } from './posture.js';
import { provisioningErrors } from './provisioning.js';
import { registryErrors } from './registry.js';
import { rolloutErrors } from './rollouts.js';
import { updatesErrors } from './updates.js';
import { updateClientErrors } from './update-client.js';

export type { ErrorSpec } from './error-spec.js';

/**
 * The closed catalogue of error codes. Callers branch on `code`, never on message text.
 * docs/errors.md lists the same codes; a test keeps the two equal.
 * Each domain owns one file; add a domain by adding its file here.
 */
export const ERRORS = {
  ...commonErrors,
  ...registryErrors,
  ...authErrors,
  ...cryptoErrors,
  ...caErrors,
  ...provisioningErrors,
  ...gatewayErrors,
  ...rolloutErrors,
  ...operationsErrors,
  ...updatesErrors,
  ...postureErrors,
  ...attestationErrors,
  ...updateClientErrors,
  ...clusterErrors,
  ...consoleErrors,
} as const;

export type ErrorCode = keyof typeof ERRORS;

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERRORS, value);
}

/**
 * The one error type that crosses module boundaries. `detail` is for the audit log and the
 * server log only; it is never serialised to a caller.
 */
export class FleetkeyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string | undefined;
  readonly extra: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, options: { detail?: string; extra?: Record<string, unknown>; cause?: unknown } = {}) {
    const spec: ErrorSpec = ERRORS[code];
    super(spec.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FleetkeyError';
    this.code = code;
    this.status = spec.status;
    this.detail = options.detail;
    this.extra = options.extra;
  }
}

export function isFleetkeyError(e: unknown): e is FleetkeyError {
  return e instanceof FleetkeyError;
}
export { ERROR_DOMAINS } from './domains.js';
