import { Type, type Static } from '@sinclair/typebox';
import { SEMVER_PATTERN } from '../updates/semver.js';
import { RootMetadata, TARGET_NAME_PATTERN, TargetsMetadata } from '../updates/tuf-metadata.js';
import { NameString, Timestamp, Uuid } from './common.js';

export const SemverString = Type.String({ pattern: SEMVER_PATTERN, maxLength: 64 });
export const ModelString = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' });
export const Sha256Hex = Type.String({ pattern: '^[0-9a-f]{64}$' });
export const TargetName = Type.String({ pattern: TARGET_NAME_PATTERN });

export const Release = Type.Object(
  {
    id: Uuid,
    model: Type.String(),
    version: Type.String(),
    minVersion: Type.Union([Type.String(), Type.Null()]),
    targetName: Type.String(),
    sha256: Type.String(),
    length: Type.Integer(),
    signedBy: Type.Array(Type.String()),
    targetsVersion: Type.Integer(),
    createdAt: Timestamp,
    createdBy: Type.String(),
  },
  { additionalProperties: false },
);
export type Release = Static<typeof Release>;
export const ReleaseList = Type.Object({ releases: Type.Array(Release) }, { additionalProperties: false });

/** Answer of an artifact upload: what the targets metadata must list for it. */
export const ArtifactStored = Type.Object({ sha256: Sha256Hex, length: Type.Integer() }, { additionalProperties: false });
export type ArtifactStored = Static<typeof ArtifactStored>;

/**
 * A release is admitted with the new targets metadata that lists it, signed outside Fleetkey by
 * a threshold of the targets keys the root trusts (`fleetkey release sign`).
 */
export const CreateReleaseBody = Type.Object(
  {
    model: ModelString,
    version: SemverString,
    minVersion: Type.Optional(SemverString),
    targetName: TargetName,
    targets: TargetsMetadata,
  },
  { additionalProperties: false },
);
export type CreateReleaseBody = Static<typeof CreateReleaseBody>;

/** Draft targets metadata (unsigned) adding one target to the current targets, for offline signing. */
export const DraftTargetsBody = Type.Object(
  {
    model: ModelString,
    version: SemverString,
    minVersion: Type.Optional(SemverString),
    targetName: TargetName,
    sha256: Sha256Hex,
    length: Type.Integer({ minimum: 0 }),
    expiresInDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
  },
  { additionalProperties: false },
);
export type DraftTargetsBody = Static<typeof DraftTargetsBody>;

export const AssignReleaseBody = Type.Object({ name: NameString, releaseId: Uuid }, { additionalProperties: false });
export type AssignReleaseBody = Static<typeof AssignReleaseBody>;
export const UnassignReleaseBody = Type.Object({ name: NameString }, { additionalProperties: false });

export const DesiredRelease = Type.Object(
  { name: Type.String(), nameId: Uuid, releaseId: Uuid, source: Type.String(), rolloutId: Type.Union([Uuid, Type.Null()]), updatedAt: Timestamp },
  { additionalProperties: false },
);
export type DesiredRelease = Static<typeof DesiredRelease>;

export const SubmitRootBody = Type.Object({ repo: Type.Union([Type.Literal('image'), Type.Literal('director')]), root: RootMetadata }, { additionalProperties: false });
export type SubmitRootBody = Static<typeof SubmitRootBody>;

/** The online public keys an offline root must list (snapshot, timestamp; director targets too). */
export const OnlineKeys = Type.Object(
  {
    image: Type.Object({ snapshot: Type.Unknown(), timestamp: Type.Unknown() }, { additionalProperties: false }),
    director: Type.Object({ targets: Type.Unknown(), snapshot: Type.Unknown(), timestamp: Type.Unknown() }, { additionalProperties: false }),
  },
  { additionalProperties: false },
);
