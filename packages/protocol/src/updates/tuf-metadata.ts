import { Type, type Static } from '@sinclair/typebox';

/**
 * TUF 1.0 metadata documents as Fleetkey accepts them at its edges (uploads of root and
 * targets, CLI files). Closed shapes: no delegations (TUF 1.0 §4.5 "delegations" is optional and
 * not supported), flat target names so a target's URL is `{sha256}.{name}` (§5.7.3 consistent
 * snapshots). `custom` is free-form as the spec allows.
 */
export const TUF_SPEC_VERSION = '1.0.31';
/** A target name: one path segment (no directories), so consistent-snapshot URLs are flat. */
export const TARGET_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$';
export const KEYID_PATTERN = '^[0-9a-f]{64}$';
const Hex = (max: number) => Type.String({ pattern: '^[0-9a-f]+$', maxLength: max });
/** TUF 1.0 §4.2: ISO 8601 "YYYY-MM-DDTHH:MM:SSZ". */
export const TufExpires = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z$' });
const Version = Type.Integer({ minimum: 1, maximum: 2_147_483_647 });
const SpecVersion = Type.String({ pattern: '^1\\.\\d+(\\.\\d+)?$' });

export const TufKey = Type.Union([
  Type.Object(
    { keytype: Type.Literal('ed25519'), scheme: Type.Literal('ed25519'), keyval: Type.Object({ public: Type.String({ pattern: '^[0-9a-f]{64}$' }) }, { additionalProperties: false }) },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      keytype: Type.Literal('ecdsa'),
      scheme: Type.Literal('ecdsa-sha2-nistp256'),
      keyval: Type.Object({ public: Type.String({ pattern: '^-----BEGIN PUBLIC KEY-----\\n[A-Za-z0-9+/=\\n]+-----END PUBLIC KEY-----\\n?$', maxLength: 400 }) }, { additionalProperties: false }),
    },
    { additionalProperties: false },
  ),
]);
export type TufKey = Static<typeof TufKey>;

export const TufSignature = Type.Object({ keyid: Type.String({ pattern: KEYID_PATTERN }), sig: Hex(300) }, { additionalProperties: false });
export type TufSignature = Static<typeof TufSignature>;

const RoleKeys = Type.Object(
  { keyids: Type.Array(Type.String({ pattern: KEYID_PATTERN }), { minItems: 1, maxItems: 16, uniqueItems: true }), threshold: Type.Integer({ minimum: 1, maximum: 16 }) },
  { additionalProperties: false },
);

export const RootSigned = Type.Object(
  {
    _type: Type.Literal('root'),
    spec_version: SpecVersion,
    version: Version,
    expires: TufExpires,
    consistent_snapshot: Type.Literal(true),
    keys: Type.Record(Type.String({ pattern: KEYID_PATTERN }), TufKey, { maxProperties: 64, additionalProperties: false }),
    roles: Type.Object({ root: RoleKeys, targets: RoleKeys, snapshot: RoleKeys, timestamp: RoleKeys }, { additionalProperties: false }),
  },
  { additionalProperties: false },
);
export type RootSigned = Static<typeof RootSigned>;

export const TargetFile = Type.Object(
  {
    length: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    hashes: Type.Object({ sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }) }, { additionalProperties: false }),
    custom: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 32 })),
  },
  { additionalProperties: false },
);
export type TargetFile = Static<typeof TargetFile>;

export const TargetsSigned = Type.Object(
  {
    _type: Type.Literal('targets'),
    spec_version: SpecVersion,
    version: Version,
    expires: TufExpires,
    targets: Type.Record(Type.String({ pattern: TARGET_NAME_PATTERN }), TargetFile, { maxProperties: 10_000, additionalProperties: false }),
  },
  { additionalProperties: false },
);
export type TargetsSigned = Static<typeof TargetsSigned>;

const MetaFile = Type.Object({ version: Version, length: Type.Optional(Type.Integer({ minimum: 0 })), hashes: Type.Optional(Type.Record(Type.String(), Type.String())) }, { additionalProperties: false });
export const SnapshotSigned = Type.Object(
  { _type: Type.Literal('snapshot'), spec_version: SpecVersion, version: Version, expires: TufExpires, meta: Type.Record(Type.String(), MetaFile) },
  { additionalProperties: false },
);
export type SnapshotSigned = Static<typeof SnapshotSigned>;
export const TimestampSigned = Type.Object(
  { _type: Type.Literal('timestamp'), spec_version: SpecVersion, version: Version, expires: TufExpires, meta: Type.Record(Type.String(), MetaFile) },
  { additionalProperties: false },
);
export type TimestampSigned = Static<typeof TimestampSigned>;

const Envelope = <S extends typeof RootSigned | typeof TargetsSigned>(signed: S) =>
  Type.Object({ signatures: Type.Array(TufSignature, { maxItems: 32 }), signed }, { additionalProperties: false });
export const RootMetadata = Envelope(RootSigned);
export type RootMetadata = Static<typeof RootMetadata>;
export const TargetsMetadata = Envelope(TargetsSigned);
export type TargetsMetadata = Static<typeof TargetsMetadata>;

/** Any signed TUF document (what a signer adds a signature to). */
export interface Signed<T> {
  signatures: TufSignature[];
  signed: T;
}
