import { Ajv, type Options } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';
import { createRequire } from 'node:module';

// ajv-formats is CommonJS whose typings describe an ESM default export; require() sidesteps the
// interop mismatch under NodeNext.
const addFormats = createRequire(import.meta.url)('ajv-formats') as (ajv: Ajv) => Ajv;

const base: Options = { allErrors: false, strict: true, useDefaults: true, removeAdditional: false };

// Bodies are checked strictly: no type coercion ("true" is not a boolean) and unknown fields are
// refused, not silently dropped (fastify's default removes them).
const bodyAjv = addFormats(new Ajv({ ...base, coerceTypes: false }));
// Query strings and path parameters are text by nature: numbers and booleans are coerced.
const textAjv = addFormats(new Ajv({ ...base, coerceTypes: 'array' }));
for (const ajv of [bodyAjv, textAjv]) ajv.addKeyword('kind').addKeyword('modifier');

export const validatorCompiler: FastifySchemaCompiler<object> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? bodyAjv : textAjv).compile(schema);
