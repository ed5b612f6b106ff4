import { Type, type Static } from '@sinclair/typebox';
import { DURATION_PATTERN } from '../duration.js';
import { ATTESTATION_TYPES } from '../identity.js';
import { NameString, Reason, Tags, Timestamp, Uuid } from './common.js';

/**
 * Provisioning wire contract (device plane, HTTPS on the device listener, default :8443).
 *
 * Every method ends the same way: the device sends a CSR for a NEW key it generated in its own
 * keystore, and gets back a `ProvisioningResult`. No response ever carries a private key.
 *
 *  X.509 (birth certificate, IEEE 802.1AR IDevID):
 *    POST /device/v1/provision/x509          over mTLS with the IDevID            body X509ProvisionBody
 *    — or, where TLS is terminated before Fleetkey —
 *    POST /device/v1/provision/nonce         → { nonce }   (single use, 5 minutes)
 *    POST /device/v1/provision/x509          body X509ProvisionBody with idevidChainPem, nonce, nonceSignature
 *  Symmetric key (SAS token, see packages/crypto/src/sas):
 *    POST /device/v1/provision/symmetric     body SymmetricProvisionBody; token resource = `provision/<deviceId>`
 *  TPM 2.0 (credential activation, TPM 2.0 Part 1 §24):
 *    POST /device/v1/provision/tpm/start     body TpmStartBody → TpmChallenge (MakeCredential output)
 *    POST /device/v1/provision/tpm/finish    body TpmFinishBody (the activated secret + CSR) → ProvisioningResult
 *
 * Refusals: 403 PROVISIONING_REFUSED is definitive (unknown device, bad evidence, disabled or
 * expired enrollment, revoked device): an SDK stops retrying. 429 RATE_LIMITED and 5xx are
 * transient: retry with jittered backoff. The precise reason is only in the audit log.
 */

const Csr = Type.String({ minLength: 64, maxLength: 16384, description: 'PKCS#10 CSR, PEM, for a new key' });
const B64 = (max: number) => Type.String({ minLength: 4, maxLength: max, pattern: '^[A-Za-z0-9+/=]+$' });

export const X509ProvisionBody = Type.Object(
  {
    csr: Csr,
    /** Only without mTLS: the IDevID chain (leaf first), the nonce from /provision/nonce and its signature by the IDevID key (DER ECDSA, base64). */
    idevidChainPem: Type.Optional(Type.String({ minLength: 64, maxLength: 32768 })),
    nonce: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' })),
    nonceSignature: Type.Optional(B64(512)),
  },
  { additionalProperties: false },
);
export type X509ProvisionBody = Static<typeof X509ProvisionBody>;

/** A nonce request carries nothing: no body, `null` or `{}` (what the device SDK sends). */
export const NonceBody = Type.Union([Type.Null(), Type.Object({}, { additionalProperties: false })], { description: 'no request body' });
export const NonceResult = Type.Object({ nonce: Type.String(), expiresAt: Timestamp }, { additionalProperties: false });

export const SymmetricProvisionBody = Type.Object(
  { deviceId: Uuid, token: Type.String({ minLength: 10, maxLength: 2048 }), csr: Csr },
  { additionalProperties: false },
);
export type SymmetricProvisionBody = Static<typeof SymmetricProvisionBody>;

export const TpmStartBody = Type.Object(
  {
    deviceId: Uuid,
    /** TPM2B_PUBLIC of the endorsement key, base64. */
    ekPublic: B64(2048),
    /** The EK certificate from NV (DER, base64), when the TPM has one. */
    ekCertificate: Type.Optional(B64(8192)),
    /** TPM2B_PUBLIC of the attestation key, base64. */
    akPublic: B64(2048),
  },
  { additionalProperties: false },
);
export type TpmStartBody = Static<typeof TpmStartBody>;

export const TpmChallenge = Type.Object(
  {
    challengeId: Uuid,
    /** TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET, base64, as tpm2_activatecredential reads them (without the tpm2-tools file header). */
    credentialBlob: Type.String(),
    encryptedSecret: Type.String(),
    expiresAt: Timestamp,
  },
  { additionalProperties: false },
);
export type TpmChallenge = Static<typeof TpmChallenge>;

export const TpmFinishBody = Type.Object(
  { challengeId: Uuid, secret: B64(128), csr: Csr },
  { additionalProperties: false },
);
export type TpmFinishBody = Static<typeof TpmFinishBody>;

export const ProvisioningResult = Type.Object(
  {
    deviceId: Uuid,
    name: Type.Union([Type.String(), Type.Null()]),
    certificatePem: Type.String(),
    /** Operational certificate followed by the issuing CA. */
    chainPem: Type.String(),
    /** Root + issuing CAs: trust for the gateway and the device plane. */
    caBundlePem: Type.String(),
    gateway: Type.Object(
      { mqttUrl: Type.Union([Type.String(), Type.Null()]), deviceUrl: Type.String() },
      { additionalProperties: false },
    ),
    notAfter: Timestamp,
    renewAfter: Timestamp,
  },
  { additionalProperties: false },
);
export type ProvisioningResult = Static<typeof ProvisioningResult>;

// ---- Enrollments (operator plane, /v1/enrollments) ----

export { ATTESTATION_TYPES, type AttestationType } from '../identity.js';

export const Allocation = Type.Union([
  Type.Object({ type: Type.Literal('fixed'), name: NameString }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('table'), entries: Type.Record(Type.String(), NameString, { maxProperties: 100_000 }) }, { additionalProperties: false }),
  /** `{model}`, `{serial}` (first component serial), `{serial.<component>}`, `{id}`, `{id8}` are substituted, then lower-cased. */
  Type.Object({ type: Type.Literal('template'), template: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('pending') }, { additionalProperties: false }),
]);
export type Allocation = Static<typeof Allocation>;

export const REVOCATION_POLICIES = ['require', 'best-effort', 'none'] as const;
export const RevocationPolicy = Type.Union(REVOCATION_POLICIES.map((p) => Type.Literal(p)));
export type RevocationPolicy = Static<typeof RevocationPolicy>;

export const CreateEnrollmentBody = Type.Object(
  {
    label: Type.String({ minLength: 1, maxLength: 128 }),
    kind: Type.Union([Type.Literal('individual'), Type.Literal('group')]),
    attestation: Type.Union(ATTESTATION_TYPES.map((a) => Type.Literal(a))),
    /** Individual: the device, and for x509 optionally the IDevID's SHA-256 fingerprint, for tpm optionally the EK public's SHA-256. */
    deviceId: Type.Optional(Uuid),
    idevidFingerprint: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
    ekPublicSha256: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
    /** Group x509: manufacturer trust anchors (PEM). Omitted: Fleetkey's own manufacturing CA. Group tpm: TPM manufacturer roots (PEM). */
    trustAnchorsPem: Type.Optional(Type.String({ minLength: 64, maxLength: 65536 })),
    allocation: Type.Optional(Allocation),
    tags: Type.Optional(Tags),
    certificateValidity: Type.Optional(Type.String({ pattern: DURATION_PATTERN })),
    reprovisioning: Type.Optional(Type.Union([Type.Literal('keep'), Type.Literal('reset'), Type.Literal('never')])),
    expiresAt: Type.Optional(Timestamp),
    maxDevices: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 })),
    /** Called before allocation with the device's identity; only `{"allow": true}` in 2 s admits it (fail closed). */
    decisionWebhookUrl: Type.Optional(Type.String({ minLength: 8, maxLength: 2048 })),
    /**
     * X.509 with outside anchors: how the anchors' revocations are checked (RFC 5280 §6.3).
     * `require` (default): a fresh CRL from each issuer in the path or the device is refused;
     * `best-effort`: CRLs are used when present and fresh; `none`: no CRL check. Revoked is
     * always refused when known. Not for Fleetkey's own manufacturing CA (its revocations are its own).
     */
    revocation: Type.Optional(RevocationPolicy),
    /** Where to fetch the anchors' CRLs (http/https), besides the anchors' own cRLDistributionPoints. */
    crlUrls: Type.Optional(Type.Array(Type.String({ minLength: 8, maxLength: 2048 }), { maxItems: 8 })),
  },
  { additionalProperties: false },
);
export type CreateEnrollmentBody = Static<typeof CreateEnrollmentBody>;

export const Enrollment = Type.Object(
  {
    id: Uuid,
    label: Type.String(),
    kind: Type.Union([Type.Literal('individual'), Type.Literal('group')]),
    attestation: Type.Union(ATTESTATION_TYPES.map((a) => Type.Literal(a))),
    deviceId: Type.Union([Uuid, Type.Null()]),
    idevidFingerprint: Type.Union([Type.String(), Type.Null()]),
    ekPublicSha256: Type.Union([Type.String(), Type.Null()]),
    trustAnchors: Type.Array(Type.Object({ subject: Type.String(), fingerprintSha256: Type.String() }, { additionalProperties: false })),
    allocation: Allocation,
    tags: Tags,
    certificateValidity: Type.String(),
    reprovisioning: Type.Union([Type.Literal('keep'), Type.Literal('reset'), Type.Literal('never')]),
    enabled: Type.Boolean(),
    expiresAt: Type.Union([Timestamp, Type.Null()]),
    maxDevices: Type.Union([Type.Integer(), Type.Null()]),
    devicesProvisioned: Type.Integer(),
    decisionWebhookUrl: Type.Union([Type.String(), Type.Null()]),
    revocation: RevocationPolicy,
    crlUrls: Type.Array(Type.String()),
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);
export type Enrollment = Static<typeof Enrollment>;

/** Creation of a symmetric group enrollment is the only time its group key is shown. */
export const CreatedEnrollment = Type.Object(
  {
    enrollment: Enrollment,
    groupKey: Type.Optional(Type.String({ description: 'base64; shown once' })),
    /** Signs decision webhook calls (Fleetkey-Signature, as for event webhooks); shown once. */
    decisionSecret: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type CreatedEnrollment = Static<typeof CreatedEnrollment>;
export const EnrollmentList = Type.Object({ enrollments: Type.Array(Enrollment) }, { additionalProperties: false });

/** For the manufacturing station: the per-device key of a symmetric group, never the group key. */
export const DerivedKey = Type.Object({ deviceId: Uuid, deviceKey: Type.String({ description: 'base64' }) }, { additionalProperties: false });
export type DerivedKey = Static<typeof DerivedKey>;

// ---- CRLs of an enrollment's outside anchors (operator plane, /v1/enrollments/:id/crls) ----

/** A CRL to add: PEM (`-----BEGIN X509 CRL-----`) or base64 DER; verified against the enrollment's anchors (or `issuerPem`, validated up to one). */
export const AddEnrollmentCrlBody = Type.Object(
  {
    crl: Type.String({ minLength: 64, maxLength: 22 * 1024 * 1024 }),
    /** PEM: the CA certificate that signed the CRL when it is not an anchor (a manufacturer's issuing CA), then any certificates up to an anchor. */
    issuerPem: Type.Optional(Type.String({ minLength: 64, maxLength: 65536 })),
  },
  { additionalProperties: false },
);
export type AddEnrollmentCrlBody = Static<typeof AddEnrollmentCrlBody>;

export const EnrollmentCrl = Type.Object(
  {
    id: Uuid,
    enrollmentId: Uuid,
    /** Subject of the CA certificate that signed it (an anchor, or a CA chaining to one) and its SHA-256 fingerprint. */
    issuer: Type.String(),
    issuerFingerprintSha256: Type.String(),
    /** SHA-256 of its issuingDistributionPoint, or null for a CRL of full scope. */
    scope: Type.Union([Type.String(), Type.Null()]),
    thisUpdate: Timestamp,
    nextUpdate: Timestamp,
    crlNumber: Type.Union([Type.String(), Type.Null()]),
    entries: Type.Integer(),
    source: Type.Union([Type.Literal('upload'), Type.Literal('fetch')]),
    url: Type.Union([Type.String(), Type.Null()]),
    /** Past its nextUpdate: no longer used. */
    stale: Type.Boolean(),
    updatedAt: Timestamp,
  },
  { additionalProperties: false },
);
export type EnrollmentCrl = Static<typeof EnrollmentCrl>;
export const EnrollmentCrlList = Type.Object({ revocation: RevocationPolicy, crlUrls: Type.Array(Type.String()), crls: Type.Array(EnrollmentCrl) }, { additionalProperties: false });
export type EnrollmentCrlList = Static<typeof EnrollmentCrlList>;
// ---- Evidence bound to the physical identity (/v1/devices/:id/evidence) ----

/** What proved a device at an admission: TPM EK hash, IDevID issuer + serial + key hash, or symmetric key id. */
export const EvidenceRecord = Type.Object(
  {
    method: Type.Union(ATTESTATION_TYPES.map((a) => Type.Literal(a))),
    /** Must match exactly on every later admission. */
    identity: Type.Record(Type.String(), Type.String()),
    /** Recorded at the latest admission, not compared (the TPM's AK name). */
    seen: Type.Record(Type.String(), Type.String()),
    enrollmentId: Uuid,
    recordedAt: Timestamp,
    lastSeenAt: Timestamp,
    resetAt: Type.Union([Timestamp, Type.Null()]),
    resetReason: Type.Union([Type.String(), Type.Null()]),
    resetBy: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);
export type EvidenceRecord = Static<typeof EvidenceRecord>;

export const DeviceEvidence = Type.Object(
  { deviceId: Uuid, current: Type.Union([EvidenceRecord, Type.Null()]), history: Type.Array(EvidenceRecord, { description: 'evidence reset by an operator, newest first' }) },
  { additionalProperties: false },
);
export type DeviceEvidence = Static<typeof DeviceEvidence>;

/** A repaired device (new TPM, new IDevID): the operator says why; the next admission records the new evidence. */
export const EvidenceResetBody = Type.Object({ reason: Reason }, { additionalProperties: false });
export type EvidenceResetBody = Static<typeof EvidenceResetBody>;
