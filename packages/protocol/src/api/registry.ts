import { Type, type Static } from '@sinclair/typebox';
import { DEVICE_STATUSES } from '../identity.js';
import { NameString, Reason, TagFilter, Tags, Timestamp, Uuid } from './common.js';

const Status = Type.Union(DEVICE_STATUSES.map((s) => Type.Literal(s)));

export const Device = Type.Object(
  {
    id: Uuid,
    model: Type.Union([Type.String(), Type.Null()]),
    serials: Type.Record(Type.String(), Type.String()),
    hardwareFingerprint: Type.Union([Type.String(), Type.Null()]),
    status: Status,
    statusReason: Type.Union([Type.String(), Type.Null()]),
    name: Type.Union([Type.String(), Type.Null()]),
    /** The last version the device reported installed (`devices/{id}/update`), null before any. */
    installedVersion: Type.Union([Type.String(), Type.Null()]),
    installedReleaseId: Type.Union([Type.String(), Type.Null()]),
    installedAt: Type.Union([Timestamp, Type.Null()]),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { additionalProperties: false },
);
export type Device = Static<typeof Device>;

export const CreateDeviceBody = Type.Object(
  {
    id: Type.Optional(Uuid),
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' })),
    serials: Type.Optional(
      Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_.-]{0,63}$' }), Type.String({ minLength: 1, maxLength: 128 }), {
        maxProperties: 32,
        additionalProperties: false,
      }),
    ),
  },
  { additionalProperties: false },
);
export type CreateDeviceBody = Static<typeof CreateDeviceBody>;

export const DeviceStatusAction = Type.Union([
  Type.Literal('suspend'),
  Type.Literal('resume'),
  Type.Literal('revoke'),
  Type.Literal('retire'),
]);
export type DeviceStatusAction = Static<typeof DeviceStatusAction>;

export const DeviceStatusBody = Type.Object({ reason: Type.Optional(Reason) }, { additionalProperties: false });

export const DeviceList = Type.Object({ devices: Type.Array(Device) }, { additionalProperties: false });
export type DeviceList = Static<typeof DeviceList>;
export const DeviceListQuery = Type.Object(
  {
    status: Type.Optional(Status),
    /** Exact model (the console's filter; indexed with the id for keyset pagination). */
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' })),
    /** Search: a prefix of the device id or of the name it is bound to. */
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:/-]*$' })),
    /** Devices whose last installed version is exactly this one (semver, as reported). */
    installedVersion: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[0-9A-Za-z.+-]+$' })),
    /** `key=value`: devices whose currently bound name carries this tag. */
    tag: Type.Optional(TagFilter),
    /** Devices with (true) / without (false) a live gateway session, per device_presence (cluster-wide). */
    online: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    after: Type.Optional(Uuid),
  },
  { additionalProperties: false },
);

export const Binding = Type.Object(
  {
    id: Uuid,
    name: Type.String({ description: 'the name as it is called now' }),
    deviceId: Uuid,
    from: Timestamp,
    to: Type.Union([Timestamp, Type.Null()]),
    bindReason: Type.Union([Type.String(), Type.Null()]),
    bindActor: Type.String(),
    unbindReason: Type.Union([Type.String(), Type.Null()]),
    unbindActor: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);
export type Binding = Static<typeof Binding>;
export const BindingList = Type.Object({ bindings: Type.Array(Binding) }, { additionalProperties: false });
export type BindingList = Static<typeof BindingList>;

export const Name = Type.Object(
  {
    id: Uuid,
    name: NameString,
    tags: Tags,
    deviceId: Type.Union([Uuid, Type.Null()]),
    boundSince: Type.Union([Timestamp, Type.Null()]),
    aliases: Type.Array(Type.String()),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { additionalProperties: false },
);
export type Name = Static<typeof Name>;

export const CreateNameBody = Type.Object(
  { name: NameString, tags: Type.Optional(Tags) },
  { additionalProperties: false },
);
export type CreateNameBody = Static<typeof CreateNameBody>;

export const BindBody = Type.Object({ deviceId: Uuid, reason: Type.Optional(Reason) }, { additionalProperties: false });
export type BindBody = Static<typeof BindBody>;

export const UnbindBody = Type.Object({ reason: Type.Optional(Reason) }, { additionalProperties: false });

export const ReplaceBody = Type.Object(
  {
    deviceId: Uuid,
    /**
     * The device being replaced, as the caller saw it bound (required: a replace never takes the
     * name from, or revokes, a device its caller did not name). A different holder → BINDING_CONFLICT.
     */
    expectedDeviceId: Uuid,
    revokeOld: Type.Optional(Type.Boolean({ default: false })),
    reason: Type.Optional(Reason),
  },
  { additionalProperties: false },
);
export type ReplaceBody = Static<typeof ReplaceBody>;

export const ReplaceResult = Type.Object(
  {
    name: Name,
    previousDeviceId: Uuid,
    oldDeviceRevoked: Type.Boolean(),
  },
  { additionalProperties: false },
);
export type ReplaceResult = Static<typeof ReplaceResult>;

export const RenameBody = Type.Object({ newName: NameString }, { additionalProperties: false });

export const NameHistory = Type.Object(
  { name: Type.String(), aliases: Type.Array(Type.String()), bindings: Type.Array(Binding) },
  { additionalProperties: false },
);
export type NameHistory = Static<typeof NameHistory>;

export const NameList = Type.Object({ names: Type.Array(Name) }, { additionalProperties: false });
export type NameList = Static<typeof NameList>;

export const AtQuery = Type.Object({ at: Type.Optional(Timestamp) }, { additionalProperties: false });
export const DeviceAt = Type.Object(
  { name: Type.String(), at: Timestamp, deviceId: Type.Union([Uuid, Type.Null()]) },
  { additionalProperties: false },
);
export const NameAt = Type.Object(
  { deviceId: Uuid, at: Timestamp, name: Type.Union([Type.String(), Type.Null()]) },
  { additionalProperties: false },
);
