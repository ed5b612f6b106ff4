import { Ajv, type Options } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';
import { createRequire } from 'node:module';
import { isRfc3339DateTime } from './rfc3339.js';

// ajv-formats is CommonJS whose typings describe an ESM default export; require() sidesteps the
// interop mismatch under NodeNext.
const addFormats = createRequire(import.meta.url)('ajv-formats') as (ajv: Ajv) => Ajv;

// strictNumbers: NaN and ±Infinity are not numbers. Without it `?limit=Infinity` (or `1e309`,
// which parses to Infinity) is coerced, passes as an "integer" and reaches the store.
const base: Options = { allErrors: false, strict: true, strictNumbers: true, useDefaults: true, removeAdditional: false };

// Bodies are checked strictly: no type coercion ("true" is not a boolean) and unknown fields are
// refused, not silently dropped (fastify's default removes them).
const bodyAjv = addFormats(new Ajv({ ...base, coerceTypes: false }));
// Query strings and path parameters are text by nature: numbers and booleans are coerced.
const textAjv = addFormats(new Ajv({ ...base, coerceTypes: 'array' }));
for (const ajv of [bodyAjv, textAjv]) {
  ajv.addKeyword('kind').addKeyword('modifier');
  // ajv-formats' date-time admits leap seconds (23:59:60), which Date cannot represent: the
  // value would pass validation and throw in the handler. Ours is RFC 3339 §5.6 without them.
  ajv.addFormat('date-time', { type: 'string', validate: isRfc3339DateTime });
}

export const validatorCompiler: FastifySchemaCompiler<object> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? bodyAjv : textAjv).compile(schema);
