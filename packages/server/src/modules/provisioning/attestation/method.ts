import { FleetkeyError, type AttestationType } from '@fleetkey/protocol';
import type { Work } from '../../../context/unit-of-work.js';
import type { EnrollmentRow } from '../../../store/schema.js';
import type { Evidence } from '../evidence.js';

/** What a method established about the device: the provisioning service does the rest. */
export interface Attested {
  readonly deviceId: string;
  readonly enrollment: EnrollmentRow;
  readonly method: AttestationType;
  /** The physical identity that proved it: recorded at the first admission, compared after. */
  readonly evidence: Evidence;
  /** SHA-256 of SPKIs the operational certificate must not certify (the IDevID key). */
  readonly forbiddenKeys: readonly string[];
  /** For the audit entry; never a secret. */
  readonly detail: Record<string, unknown>;
}

/** The single refusal a device sees; `detail` (why) goes only to the audit log. */
export function refused(detail: string): FleetkeyError {
  return new FleetkeyError('PROVISIONING_REFUSED', { detail });
}

/**
 * One interface for every attestation method (step-ca's provisioners). The base refuses every
 * step, so a method that forgets to implement one fails closed rather than open.
 */
export abstract class AttestationMethod<Challenge = never, Evidence = never> {
  abstract readonly type: AttestationType;

  /** First round trip for methods that need one (a nonce, a TPM credential challenge). */
  async challenge(_w: Work, _request: Challenge): Promise<unknown> {
    throw refused(`${this.type}: no challenge step`);
  }

  /** Verifies the device's evidence and returns who it is and under which enrollment. */
  async attest(_w: Work, _evidence: Evidence): Promise<Attested> {
    throw refused(`${this.type}: attestation not implemented`);
  }
}
