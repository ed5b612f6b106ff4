import { FleetkeyError } from '@fleetkey/protocol';
import type { FastifyInstance } from 'fastify';

const refuse = (detail: string) => new FleetkeyError('VALIDATION_FAILED', { detail });

/** Walks a parsed value; NUL in a string or a member name is refused wherever it is. */
function nulFree(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return !value.includes('\u0000');
  if (depth > 64 || value === null || typeof value !== 'object') return true;
  if (Array.isArray(value)) return value.every((v) => nulFree(v, depth + 1));
  return Object.entries(value).every(([k, v]) => !k.includes('\u0000') && nulFree(v, depth + 1));
}

/** Numbers left after validation must be finite. */
function finite(value: unknown): boolean {
  if (typeof value === 'number') return Number.isFinite(value);
  if (value === null || typeof value !== 'object') return true;
  return Object.values(value).every(finite);
}

/**
 * Checks every request makes before its schema is applied, on every route of the app:
 * - no NUL anywhere (path, query, body): PostgreSQL text cannot hold U+0000 and answers an
 *   error, SQLite stores it and a C reader truncates at it — either way a value that is not
 *   what the caller sent;
 * - numbers finite (after ajv's coercion, which lets Infinity through);
 * - no repeated query parameter: `?limit=1&limit=2` would otherwise be an array, or with a
 *   schema of arrays, the first or the last depending on the reader.
 */
export function installInputGuard(app: FastifyInstance): void {
  app.addHook('preValidation', async (req) => {
    const query = req.query as Record<string, unknown> | undefined;
    if (query !== undefined && Object.values(query).some((v) => Array.isArray(v))) throw refuse('repeated query parameter');
    if (!nulFree(req.params) || !nulFree(query) || !nulFree(req.body)) throw refuse('NUL character');
  });
  // ajv coerces a query's "Infinity" or "1e309" to Infinity and then skips the range checks
  // (they only run on finite numbers), so `?limit=Infinity` validates. Caught after coercion.
  app.addHook('preHandler', async (req) => {
    if (!finite(req.query) || !finite(req.params)) throw refuse('number out of range');
  });
}
