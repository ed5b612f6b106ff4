import { Type, type Static } from '@sinclair/typebox';
import { DURATION_PATTERN } from '../duration.js';
import { Timestamp, Uuid } from './common.js';

/** A release id as the releases module mints it (a UUID today; any bounded token is accepted). */
export const ReleaseRef = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$', maxLength: 128 });

export const ROLLOUT_STATUSES = ['running', 'paused', 'aborted', 'completed', 'rolled_back'] as const;
export type RolloutStatus = (typeof ROLLOUT_STATUSES)[number];

/**
 * What happened to one name of a rollout. `pending`: not assigned yet; `assigned`: waiting for
 * the device; `installed`: reported installed (a success, or — under a health rule — waiting for
 * diagnostics that confirm it: `healthy` or `unhealthy`).
 */
export const TARGET_STATUSES = ['pending', 'assigned', 'installed', 'healthy', 'failed', 'timed_out', 'unhealthy', 'cancelled'] as const;
export type TargetStatus = (typeof TARGET_STATUSES)[number];

export const CreateRolloutBody = Type.Object(
  {
    release: ReleaseRef,
    /** `name:<glob>` (`*` and `?`) or `tag:<key>=<value>`: resolved to NAMES once, at creation. */
    select: Type.String({ minLength: 5, maxLength: 300 }),
    /** Cumulative percentages of the selection, strictly increasing, the last one 100. */
    waves: Type.Array(Type.Number({ exclusiveMinimum: 0, maximum: 100 }), { minItems: 1, maxItems: 20 }),
    maxPerMinute: Type.Integer({ minimum: 1, maximum: 100_000 }),
    /** AWS IoT Jobs abort criteria: failures ÷ executed above this ratio, once minExecuted executed. */
    abortFailureRatio: Type.Number({ minimum: 0, maximum: 1 }),
    minExecuted: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    /** A name assigned longer than this without reporting `installed` counts as a failure (timed_out). */
    timeout: Type.String({ pattern: DURATION_PATTERN, maxLength: 16 }),
    /** hawkBit success condition: a wave's successes ÷ its size that starts the next wave (default 1 − abortFailureRatio). */
    successRatio: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** `diagnostics.<field> <|<=|>|>=|==|!= <number>`: a device whose diagnostics after install break it is unhealthy. */
    healthRule: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);
export type CreateRolloutBody = Static<typeof CreateRolloutBody>;

export const RolloutCounts = Type.Object(
  {
    total: Type.Integer(),
    pending: Type.Integer(),
    assigned: Type.Integer(),
    installed: Type.Integer(),
    healthy: Type.Integer(),
    failed: Type.Integer(),
    timedOut: Type.Integer(),
    unhealthy: Type.Integer(),
    cancelled: Type.Integer(),
  },
  { additionalProperties: false },
);

export const RolloutView = Type.Object(
  {
    id: Uuid,
    releaseId: Type.String(),
    select: Type.String(),
    waves: Type.Array(Type.Number()),
    waveSizes: Type.Array(Type.Integer()),
    maxPerMinute: Type.Integer(),
    abortFailureRatio: Type.Number(),
    successRatio: Type.Number(),
    minExecuted: Type.Integer(),
    timeoutMs: Type.Integer(),
    healthRule: Type.Union([Type.String(), Type.Null()]),
    status: Type.Union(ROLLOUT_STATUSES.map((s) => Type.Literal(s))),
    /** 0-based index of the wave being assigned (or the last one started). */
    currentWave: Type.Integer(),
    abortReason: Type.Union([Type.String(), Type.Null()]),
    createdBy: Type.String(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    counts: RolloutCounts,
  },
  { additionalProperties: false },
);
export type RolloutView = Static<typeof RolloutView>;

export const RolloutTargetView = Type.Object(
  {
    name: Type.String(),
    nameId: Uuid,
    wave: Type.Integer(),
    status: Type.Union(TARGET_STATUSES.map((s) => Type.Literal(s))),
    previousReleaseId: Type.Union([Type.String(), Type.Null()]),
    deviceId: Type.Union([Type.String(), Type.Null()]),
    code: Type.Union([Type.String(), Type.Null()]),
    assignedAt: Type.Union([Timestamp, Type.Null()]),
    outcomeAt: Type.Union([Timestamp, Type.Null()]),
  },
  { additionalProperties: false },
);
export type RolloutTargetView = Static<typeof RolloutTargetView>;

export const RolloutIdParams = Type.Object({ id: Uuid }, { additionalProperties: false });
export const RolloutActionBody = Type.Union([Type.Null(), Type.Object({ reason: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })) }, { additionalProperties: false })]);
