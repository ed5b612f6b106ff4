import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { NAME_MAX_LENGTH, NAME_PATTERN, TAG_KEY_PATTERN, TAG_VALUE_PATTERN, UUID_PATTERN } from '../identity.js';

export const Uuid = Type.String({ pattern: UUID_PATTERN, maxLength: 36 });
export const NameString = Type.String({ pattern: NAME_PATTERN, maxLength: NAME_MAX_LENGTH });
export const Reason = Type.String({ minLength: 1, maxLength: 512 });
export const Timestamp = Type.String({ format: 'date-time', description: 'RFC 3339 UTC' });
/**
 * A `key=value` tag filter (GET /v1/names, GET /v1/devices): key and value exactly as Tags allow,
 * so no quote, backslash, `%` or `*` can reach the LIKE the server builds from it.
 */
export const TagFilter = Type.String({ pattern: `${TAG_KEY_PATTERN.slice(0, -1)}=${TAG_VALUE_PATTERN.slice(1)}`, maxLength: 194 });
export const Tags = Type.Record(Type.String({ pattern: TAG_KEY_PATTERN }), Type.String({ pattern: TAG_VALUE_PATTERN }), {
  maxProperties: 32,
  // Keys not matching the pattern must be refused, not merely left unchecked.
  additionalProperties: false,
});

export const ErrorBody = Type.Object(
  {
    code: Type.String(),
    message: Type.String(),
    requestId: Type.String(),
    details: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
    movedTo: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type ErrorBody = Static<typeof ErrorBody>;

/** The body of a route that takes none: absent (or a literal JSON null), never an object. */
export const NoBody = Type.Null({ description: 'no request body' });
/** The query of a route that takes none: any parameter is refused. */
export const NoQuery = Type.Object({}, { additionalProperties: false });
/** A body that may be left out entirely. */
export const OptionalBody = <T extends TSchema>(schema: T) => Type.Union([Type.Null(), schema]);

export const ListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  },
  { additionalProperties: false },
);
