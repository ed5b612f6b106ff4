import { Type, type Static } from '@sinclair/typebox';
import { ROLES } from '../identity.js';
import { Timestamp } from './common.js';

/** A web console session (issue 14): what the console learns at sign-in and on reload. */
export const ConsoleSession = Type.Object(
  {
    role: Type.Union(ROLES.map((r) => Type.Literal(r))),
    expiresAt: Timestamp,
    /** Sent back in the `x-csrf-token` header on every mutation made with the session cookie. */
    csrfToken: Type.String(),
  },
  { additionalProperties: false },
);
export type ConsoleSession = Static<typeof ConsoleSession>;

/** Devices by status: the fleet overview's counts (one indexed GROUP BY, not a list walk). */
export const DeviceSummary = Type.Object(
  {
    total: Type.Integer(),
    byStatus: Type.Record(Type.String(), Type.Integer()),
    /** Devices connected to this node's MQTT gateway now; null when the gateway is off. */
    online: Type.Union([Type.Integer(), Type.Null()]),
  },
  { additionalProperties: false },
);
export type DeviceSummary = Static<typeof DeviceSummary>;
