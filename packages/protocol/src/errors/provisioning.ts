import type { Catalogue } from './error-spec.js';

export const provisioningErrors = {
  // TPM attestation (TPM 2.0 Part 1 §24, TCG EK Credential Profile). Messages stay neutral:
  // which bit, which size or which certificate failed goes to `detail` for the audit log only.
  TPM_PUBLIC_MALFORMED: { status: 400, message: 'The TPM public area is malformed or uses an unsupported algorithm.' },
  TPM_AK_ATTRIBUTES: { status: 400, message: 'The attestation key does not have the required attributes.' },
  TPM_EK_UNSUPPORTED: { status: 400, message: 'The endorsement key is not a storage key this server can encrypt a credential to.' },
  TPM_CREDENTIAL_INVALID: { status: 400, message: 'The credential or key name cannot be used for credential activation.' },
  TPM_EK_CERT_MALFORMED: { status: 400, message: 'The endorsement key certificate cannot be parsed.' },
  TPM_EK_CERT_MISMATCH: { status: 403, message: 'The endorsement key certificate does not certify the endorsement key.' },
  TPM_EK_UNTRUSTED: { status: 403, message: 'The endorsement key certificate does not chain to a trusted TPM manufacturer.' },
  TPM_CREDENTIAL_PROOF_INVALID: { status: 401, message: 'The TPM did not prove possession of the credential.' },
  PROVISIONING_REFUSED: { status: 403, message: 'Provisioning was refused.' },
  ENROLLMENT_NOT_FOUND: { status: 404, message: 'No such enrollment.' },
  ENROLLMENT_INVALID: { status: 400, message: 'The enrollment definition is not consistent.' },
  // CRLs of an enrollment's outside anchors (RFC 5280 §5, §6.3).
  ENROLLMENT_CRL_INVALID: { status: 400, message: 'The CRL is not a usable CRL of this enrollment\'s trust anchors.' },
  ENROLLMENT_CRL_OUTDATED: { status: 409, message: 'A newer CRL from the same issuer is already stored.' },
  ENROLLMENT_CRL_URL_REFUSED: { status: 400, message: 'The CRL URL is not allowed or leads to an internal, reserved or otherwise refused address.' },
  // Issue 10: an enrollment must authenticate the evidence it admits (a TPM individual enrollment
  // pins the EK or names TPM roots); otherwise any key could claim the device.
  ENROLLMENT_UNAUTHENTICATED: { status: 400, message: 'The enrollment would admit devices without authenticating their evidence.' },
  DEVICE_EVIDENCE_NOT_RECORDED: { status: 409, message: 'No evidence is recorded for this device.' },
} as const satisfies Catalogue;
