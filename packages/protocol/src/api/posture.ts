import { Type, type Static } from '@sinclair/typebox';
import { Timestamp } from './common.js';

/** Severities, lowest first: `--fail-on` compares by this order. */
export const POSTURE_SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type PostureSeverity = (typeof POSTURE_SEVERITIES)[number];
const Severity = Type.Union(POSTURE_SEVERITIES.map((s) => Type.Literal(s)));

/** What a finding's ids name. */
export const POSTURE_SUBJECTS = ['device', 'name', 'enrollment', 'certificate', 'authority'] as const;
const Subject = Type.Union(POSTURE_SUBJECTS.map((s) => Type.Literal(s)));

export const PostureQuery = Type.Object(
  {
    /** Certificates whose notAfter falls within this many days are reported (default 30). */
    expiringDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650, default: 30 })),
    /** At most this many ids per finding (default 100); `count` is always the full count. */
    idLimit: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, default: 100 })),
  },
  { additionalProperties: false },
);
export type PostureQuery = Static<typeof PostureQuery>;

export const PostureFinding = Type.Object(
  {
    /** Stable identifier of the check, e.g. `certificates.expiring`. */
    id: Type.String({ pattern: '^[a-z][a-z0-9-]*(\\.[a-z][a-z0-9-]*)+$', maxLength: 64 }),
    /** The provider that ran it (`registry`, `ca`, `provisioning`, `attestation`, `releases`). */
    provider: Type.String({ maxLength: 32 }),
    severity: Severity,
    title: Type.String({ maxLength: 200 }),
    subject: Subject,
    /** How many subjects are in the finding (0: the check ran and found nothing). */
    count: Type.Integer({ minimum: 0 }),
    /** The first `idLimit` of them, ordered by id; `truncated` when count exceeds them. */
    ids: Type.Array(Type.String({ maxLength: 128 })),
    truncated: Type.Boolean(),
  },
  { additionalProperties: false },
);
export type PostureFinding = Static<typeof PostureFinding>;

/** A check family that is not running, and why (its module not installed, or it failed). */
export const PostureGap = Type.Object(
  {
    provider: Type.String({ maxLength: 32 }),
    reason: Type.String({ maxLength: 200 }),
    /** The findings it would report, so a reader knows exactly what was not checked. */
    findings: Type.Array(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);
export type PostureGap = Static<typeof PostureGap>;

export const PostureReport = Type.Object(
  {
    generatedAt: Timestamp,
    expiringDays: Type.Integer(),
    findings: Type.Array(PostureFinding),
    /** Check families that did not run: an empty list means every check below ran. */
    notChecked: Type.Array(PostureGap),
  },
  { additionalProperties: false },
);
export type PostureReport = Static<typeof PostureReport>;
