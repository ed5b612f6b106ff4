import { FleetkeyError, isErrorCode, type ErrorCode } from '@fleetkey/protocol';

/**
 * The server said no, and asking again will not change its mind: 403 PROVISIONING_REFUSED
 * (unknown device, bad evidence, disabled or expired enrollment, revoked device) or any other
 * 4xx except 429. The SDK stops at once; `code` is the server's catalogue code. The server keeps
 * the precise reason in its audit log, so `message` is the server's neutral text.
 */
export class ProvisioningRefusedError extends FleetkeyError {
  /** HTTP status the device plane answered with. */
  readonly httpStatus: number;
  /** The server's request id, to find the audit entry. */
  readonly requestId: string | undefined;

  constructor(code: string, httpStatus: number, requestId: string | undefined, detail?: string) {
    // A code from a newer server that this SDK does not know still reads as a refusal.
    const known: ErrorCode = isErrorCode(code) ? code : 'PROVISIONING_REFUSED';
    super(known, detail === undefined ? {} : { detail });
    this.name = 'ProvisioningRefusedError';
    this.httpStatus = httpStatus;
    this.requestId = requestId;
  }
}

/**
 * Every attempt failed transiently (network errors, 429, 5xx) until the retry budget ran out.
 * `code` is RATE_LIMITED when the last answer was 429, otherwise UNAVAILABLE.
 */
export class ProvisioningGaveUpError extends FleetkeyError {
  readonly attempts: number;
  readonly elapsedMs: number;

  constructor(code: 'RATE_LIMITED' | 'UNAVAILABLE', attempts: number, elapsedMs: number, detail: string, cause?: unknown) {
    super(code, cause === undefined ? { detail } : { detail, cause });
    this.name = 'ProvisioningGaveUpError';
    this.attempts = attempts;
    this.elapsedMs = elapsedMs;
  }
}

/**
 * A failure worth another attempt. Internal to the retry loop: it never escapes `provision()`
 * (the loop turns the last one into a {@link ProvisioningGaveUpError}).
 */
export class TransientProvisioningError extends Error {
  constructor(
    readonly code: 'RATE_LIMITED' | 'UNAVAILABLE',
    message: string,
    /** Server-requested wait (Retry-After, RFC 9110 §10.2.3), in milliseconds. */
    readonly retryAfterMs: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TransientProvisioningError';
  }
}
