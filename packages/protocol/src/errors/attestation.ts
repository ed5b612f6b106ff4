import type { Catalogue } from './error-spec.js';

/**
 * Measured-boot attestation (issue 13): TPM 2.0 quotes (Part 2 §10.12.12 TPMS_ATTEST, Part 3 §18.4
 * TPM2_Quote). Refusals change nothing; the verdict `ATTESTATION_PCR_POLICY` is the one outcome
 * that is recorded as a failed attestation and triggers the policy's action. Which field or which
 * PCR failed goes to `detail` (audit log) only.
 */
export const attestationErrors = {
  ATTESTATION_QUOTE_MALFORMED: { status: 400, message: 'The quote, its signature or its PCR values are malformed.' },
  ATTESTATION_SIGNATURE_INVALID: { status: 403, message: 'The quote is not signed by the attestation key recorded for this device.' },
  ATTESTATION_NONCE_INVALID: { status: 403, message: 'The quote does not carry a fresh, unused nonce issued to this device.' },
  ATTESTATION_PCR_SELECTION: { status: 403, message: 'The quote covers another PCR selection than the device\'s policy requires.' },
  ATTESTATION_PCR_DIGEST_MISMATCH: { status: 403, message: 'The reported PCR values do not match the digest the TPM signed.' },
  ATTESTATION_PCR_POLICY: { status: 403, message: 'The measured boot state does not match the attestation policy.' },
  ATTESTATION_EVENT_LOG_INVALID: { status: 400, message: 'The event log is malformed or does not replay to the quoted PCR values.' },
  ATTESTATION_NO_KEY: { status: 409, message: 'No TPM attestation key is recorded for this device.' },
  ATTESTATION_NO_POLICY: { status: 409, message: 'No attestation policy applies to this device.' },
  ATTESTATION_POLICY_INVALID: { status: 400, message: 'The attestation policy is not consistent.' },
  ATTESTATION_POLICY_NOT_FOUND: { status: 404, message: 'No such attestation policy.' },
  DEVICE_QUARANTINED: { status: 403, message: 'The device is quarantined: only attestation and update are allowed.' },
  ATTESTATION_REQUIRED: { status: 403, message: 'A recent trusted attestation is required before this device may connect.' },
} as const satisfies Catalogue;
