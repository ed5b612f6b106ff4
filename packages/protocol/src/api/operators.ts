import { Type, type Static } from '@sinclair/typebox';
import { DURATION_PATTERN } from '../duration.js';
import { EVENT_TYPES, REVOCATION_REASONS, ROLES } from '../identity.js';
import { Timestamp, Uuid } from './common.js';

const RoleSchema = Type.Union(ROLES.map((r) => Type.Literal(r)));

export const CreateTokenBody = Type.Object(
  { role: RoleSchema, name: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9 _.@-]+$' })) },
  { additionalProperties: false },
);
export type CreateTokenBody = Static<typeof CreateTokenBody>;

export const ApiToken = Type.Object(
  {
    id: Uuid,
    name: Type.Union([Type.String(), Type.Null()]),
    role: RoleSchema,
    lastFour: Type.String(),
    createdAt: Timestamp,
    createdBy: Type.String(),
    revokedAt: Type.Union([Timestamp, Type.Null()]),
    lastUsedAt: Type.Union([Timestamp, Type.Null()]),
  },
  { additionalProperties: false },
);
export type ApiToken = Static<typeof ApiToken>;

/** The only response that ever carries a token secret: the creation one. */
export const CreatedToken = Type.Object(
  { token: ApiToken, secret: Type.String() },
  { additionalProperties: false },
);
export type CreatedToken = Static<typeof CreatedToken>;
export const TokenList = Type.Object({ tokens: Type.Array(ApiToken) }, { additionalProperties: false });

const EventTypeSchema = Type.Union(EVENT_TYPES.map((e) => Type.Literal(e)));

export const CreateWebhookBody = Type.Object(
  {
    url: Type.String({ minLength: 8, maxLength: 2048 }),
    events: Type.Array(EventTypeSchema, { minItems: 1, maxItems: EVENT_TYPES.length, uniqueItems: true }),
  },
  { additionalProperties: false },
);
export type CreateWebhookBody = Static<typeof CreateWebhookBody>;

export const Webhook = Type.Object(
  {
    id: Uuid,
    url: Type.String(),
    events: Type.Array(Type.String()),
    createdAt: Timestamp,
    createdBy: Type.String(),
    deliveries: Type.Object(
      { pending: Type.Integer(), delivered: Type.Integer(), failed: Type.Integer() },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
export type Webhook = Static<typeof Webhook>;
export const CreatedWebhook = Type.Object(
  { webhook: Webhook, secret: Type.String() },
  { additionalProperties: false },
);
export type CreatedWebhook = Static<typeof CreatedWebhook>;
export const WebhookList = Type.Object({ webhooks: Type.Array(Webhook) }, { additionalProperties: false });

export const Delivery = Type.Object(
  {
    id: Uuid,
    eventId: Uuid,
    eventType: Type.String(),
    status: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
    attempts: Type.Integer(),
    nextAttemptAt: Timestamp,
    lastStatus: Type.Union([Type.Integer(), Type.Null()]),
    lastError: Type.Union([Type.String(), Type.Null()]),
    deliveredAt: Type.Union([Timestamp, Type.Null()]),
  },
  { additionalProperties: false },
);
export type Delivery = Static<typeof Delivery>;
export const DeliveryList = Type.Object({ deliveries: Type.Array(Delivery) }, { additionalProperties: false });

export const AuditEntry = Type.Object(
  {
    seq: Type.Integer(),
    at: Timestamp,
    actor: Type.String(),
    action: Type.String(),
    subject: Type.Union([Type.String(), Type.Null()]),
    outcome: Type.String(),
    code: Type.Union([Type.String(), Type.Null()]),
    requestId: Type.Union([Type.String(), Type.Null()]),
    detail: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
    hash: Type.String(),
  },
  { additionalProperties: false },
);
export type AuditEntry = Static<typeof AuditEntry>;
export const AuditList = Type.Object({ entries: Type.Array(AuditEntry) }, { additionalProperties: false });
export const AuditListQuery = Type.Object(
  {
    subject: Type.Optional(Type.String({ maxLength: 256 })),
    action: Type.Optional(Type.String({ maxLength: 64 })),
    after: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  },
  { additionalProperties: false },
);
export const AuditVerifyResult = Type.Object(
  {
    ok: Type.Boolean(),
    entries: Type.Integer(),
    firstBrokenSeq: Type.Union([Type.Integer(), Type.Null()]),
    reason: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);
export type AuditVerifyResult = Static<typeof AuditVerifyResult>;

export const Certificate = Type.Object(
  {
    serial: Type.String(),
    fingerprintSha256: Type.String(),
    deviceId: Uuid,
    kind: Type.Union([Type.Literal('operational'), Type.Literal('idevid')]),
    method: Type.String(),
    issuerId: Uuid,
    notBefore: Timestamp,
    notAfter: Timestamp,
    status: Type.Union([Type.Literal('valid'), Type.Literal('superseded'), Type.Literal('revoked'), Type.Literal('expired')]),
    supersededBy: Type.Union([Type.String(), Type.Null()]),
    revokedAt: Type.Union([Timestamp, Type.Null()]),
    revocationReason: Type.Union([Type.String(), Type.Null()]),
    certificatePem: Type.String(),
  },
  { additionalProperties: false },
);
export type Certificate = Static<typeof Certificate>;
export const CertificateList = Type.Object({ certificates: Type.Array(Certificate) }, { additionalProperties: false });

export const IssueCertificateBody = Type.Object(
  {
    deviceId: Uuid,
    csr: Type.String({ minLength: 64, maxLength: 16384, description: 'PKCS#10 CSR, PEM' }),
    validity: Type.Optional(
      Type.Union([Type.String({ pattern: DURATION_PATTERN }), Type.Literal('unlimited')], {
        description: 'duration, or `unlimited` (IDevIDs only: notAfter 99991231235959Z); default 30d, for an IDevID unlimited',
      }),
    ),
    kind: Type.Optional(Type.Union([Type.Literal('operational'), Type.Literal('idevid')])),
  },
  { additionalProperties: false },
);
export type IssueCertificateBody = Static<typeof IssueCertificateBody>;
export const IssuedCertificate = Type.Object(
  { certificate: Certificate, chainPem: Type.String() },
  { additionalProperties: false },
);
export type IssuedCertificate = Static<typeof IssuedCertificate>;

export const RevocationReasonSchema = Type.Union(REVOCATION_REASONS.map((r) => Type.Literal(r)));
export const RevokeCertificateBody = Type.Object({ reason: RevocationReasonSchema }, { additionalProperties: false });

export const CaAuthority = Type.Object(
  {
    id: Uuid,
    role: Type.Union([Type.Literal('root'), Type.Literal('issuing'), Type.Literal('manufacturing')]),
    status: Type.String(),
    keystore: Type.String(),
    subject: Type.String(),
    notBefore: Timestamp,
    notAfter: Timestamp,
    certificatePem: Type.String(),
    crlUrl: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);
export type CaAuthority = Static<typeof CaAuthority>;
export const CaList = Type.Object({ authorities: Type.Array(CaAuthority), ocspUrl: Type.String() }, { additionalProperties: false });
export type CaList = Static<typeof CaList>;
export const RootExportBody = Type.Object({ passphrase: Type.String({ minLength: 12, maxLength: 1024 }) }, { additionalProperties: false });
export const RootExport = Type.Object({ armored: Type.String() }, { additionalProperties: false });
/**
 * Re-signing the root CRL: with the root key on the server, nextUpdate `validity` ahead (default:
 * config ca.rootCrlValidity); or `crlPem`, a root CRL the operator signed offline.
 */
export const RootCrlBody = Type.Object(
  { validity: Type.Optional(Type.String({ pattern: DURATION_PATTERN })), crlPem: Type.Optional(Type.String({ minLength: 32, maxLength: 65_536 })) },
  { additionalProperties: false },
);
export const RootCrlSigned = Type.Object({ crlNumber: Type.Integer(), nextUpdate: Type.String() }, { additionalProperties: false });

export const RenewBody = Type.Object(
  { csr: Type.String({ minLength: 64, maxLength: 16384 }) },
  { additionalProperties: false },
);
