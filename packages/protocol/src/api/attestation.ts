import { Type, type Static } from '@sinclair/typebox';
import { Uuid } from './common.js';

/**
 * Measured-boot attestation (issue 13): the device plane's nonce and quote bodies, the operator
 * plane's policies and history. Quotes are TPM 2.0 structures, base64 (TPM 2.0 Part 2 §10.12.12
 * TPMS_ATTEST, §11.3.4 TPMT_SIGNATURE).
 */

const B64 = (maxLength: number) => Type.String({ pattern: '^[A-Za-z0-9+/]*={0,2}$', maxLength });
const Hex32 = Type.String({ pattern: '^[0-9a-f]{64}$' });
export const PcrIndex = Type.Integer({ minimum: 0, maximum: 23 });
export const AttestationAction = Type.Union([Type.Literal('quarantine'), Type.Literal('revoke'), Type.Literal('alert')]);

export const AttestationNonceAnswer = Type.Object(
  {
    nonce: Hex32,
    expiresAt: Type.String(),
    /** The SHA-256 PCRs the device's policy requires in its quote. */
    pcrs: Type.Array(PcrIndex, { maxItems: 24 }),
    intervalSeconds: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
);
export type AttestationNonceAnswer = Static<typeof AttestationNonceAnswer>;

export const AttestationQuoteBody = Type.Object(
  {
    /** Optional; when given it must be the authenticated device (a device never speaks for another). */
    deviceId: Type.Optional(Uuid),
    quote: B64(4096),
    signature: B64(2048),
    /** SHA-256 PCR values the device read, by index (hex). */
    pcrs: Type.Record(Type.String({ pattern: '^(?:[0-9]|1[0-9]|2[0-3])$' }), Hex32, { maxProperties: 24 }),
    /** The TCG event log (binary_bios_measurements), base64, when the platform exposes it. */
    eventLog: Type.Optional(B64(1_400_000)),
  },
  { additionalProperties: false },
);
export type AttestationQuoteBody = Static<typeof AttestationQuoteBody>;

export const AttestationVerdict = Type.Object(
  {
    verdict: Type.Union([Type.Literal('trusted'), Type.Literal('failed')]),
    code: Type.Union([Type.String(), Type.Null()]),
    quarantined: Type.Boolean(),
    nextDueAt: Type.String(),
  },
  { additionalProperties: false },
);
export type AttestationVerdict = Static<typeof AttestationVerdict>;

const DigestLists = Type.Record(Type.String({ pattern: '^(?:[0-9]|1[0-9]|2[0-3])$' }), Type.Array(Hex32, { minItems: 1, maxItems: 256 }), { maxProperties: 24 });

export const AttestationPolicyBody = Type.Object(
  {
    scope: Type.Union([Type.Literal('enrollment'), Type.Literal('model')]),
    /** The enrollment id or the model name. */
    key: Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f]+$' }),
    pcrs: Type.Array(PcrIndex, { minItems: 1, maxItems: 24, uniqueItems: true }),
    /** Accepted values per PCR (reference measurements, one or more per PCR). */
    reference: Type.Optional(DigestLists),
    /** Allowed event digests per PCR: the event log must replay to the quoted values using only these. */
    eventLog: Type.Optional(DigestLists),
    intervalSeconds: Type.Integer({ minimum: 1, maximum: 86_400 }),
    maxAgeSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 7 * 86_400 })),
    onFailure: AttestationAction,
    onStale: Type.Optional(AttestationAction),
    requireOnConnect: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type AttestationPolicyBody = Static<typeof AttestationPolicyBody>;

export const AttestationPolicy = Type.Object(
  {
    id: Uuid,
    scope: Type.Union([Type.Literal('enrollment'), Type.Literal('model')]),
    key: Type.String(),
    pcrs: Type.Array(Type.Integer()),
    reference: Type.Union([DigestLists, Type.Null()]),
    eventLog: Type.Union([DigestLists, Type.Null()]),
    intervalSeconds: Type.Integer(),
    maxAgeSeconds: Type.Integer(),
    onFailure: AttestationAction,
    onStale: AttestationAction,
    requireOnConnect: Type.Boolean(),
    updatedAt: Type.String(),
  },
  { additionalProperties: false },
);
export type AttestationPolicy = Static<typeof AttestationPolicy>;

export const AttestationRecord = Type.Object(
  {
    id: Uuid,
    at: Type.String(),
    verdict: Type.Union([Type.Literal('trusted'), Type.Literal('failed'), Type.Literal('stale')]),
    code: Type.Union([Type.String(), Type.Null()]),
    reason: Type.Union([Type.String(), Type.Null()]),
    policyId: Type.Union([Uuid, Type.Null()]),
    pcrs: Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()]),
    action: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);

export const DeviceAttestations = Type.Object(
  {
    deviceId: Uuid,
    status: Type.Union([Type.Literal('never'), Type.Literal('trusted'), Type.Literal('failed'), Type.Literal('stale')]),
    quarantined: Type.Boolean(),
    quarantineReason: Type.Union([Type.String(), Type.Null()]),
    lastTrustedAt: Type.Union([Type.String(), Type.Null()]),
    dueAt: Type.Union([Type.String(), Type.Null()]),
    history: Type.Array(AttestationRecord),
  },
  { additionalProperties: false },
);
export type DeviceAttestations = Static<typeof DeviceAttestations>;

export const AttestationHistoryQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }, { additionalProperties: false });
