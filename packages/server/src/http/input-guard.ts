import { FleetkeyError } from '@fleetkey/protocol';
import type { FastifyInstance } from 'fastify';

const refuse = (detail: string) => new FleetkeyError('VALIDATION_FAILED', { detail });

// NUL, or half of a surrogate pair (not a character: UTF-8 cannot encode it, and the driver
// would silently store U+FFFD instead).
const UNSTORABLE = /\u0000|\p{Cs}/u;

/** Walks a parsed value; an unstorable string or member name is refused wherever it is. */
function storable(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return !UNSTORABLE.test(value);
  if (depth > 64 || value === null || typeof value !== 'object') return true;
  if (Array.isArray(value)) return value.every((v) => storable(v, depth + 1));
  return Object.entries(value).every(([k, v]) => !UNSTORABLE.test(k) && storable(v, depth + 1));
}

/** Every percent-escape of the query decodes to UTF-8 (the router already refuses a path that does not). */
function queryDecodes(url: string): boolean {
  const q = url.indexOf('?');
  if (q < 0) return true;
  try {
    for (const part of url.slice(q + 1).split('&')) decodeURIComponent(part.replaceAll('+', ' '));
    return true;
  } catch {
    return false;
  }
}

/**
 * Numbers from text (query, path) left after validation must be finite, and integers exact
 * (past 2^53 the value is not the one sent; past 2^63 PostgreSQL's bigint refuses it with an error).
 */
function exact(value: unknown): boolean {
  if (typeof value === 'number') return Number.isFinite(value) && (!Number.isInteger(value) || Number.isSafeInteger(value));
  if (value === null || typeof value !== 'object') return true;
  return Object.values(value).every(exact);
}

/**
 * Checks every request makes before its schema is applied, on every route of the app:
 * - no NUL anywhere (path, query, body): PostgreSQL text cannot hold U+0000 and answers an
 *   error, SQLite stores it and a C reader truncates at it — either way a value that is not
 *   what the caller sent; likewise no lone surrogate, and no query escape that is not UTF-8;
 * - numbers from text finite and exact (after ajv's coercion, which lets Infinity through);
 * - no repeated query parameter: `?limit=1&limit=2` would otherwise be an array, or with a
 *   schema of arrays, the first or the last depending on the reader.
 */
export function installInputGuard(app: FastifyInstance): void {
  app.addHook('preValidation', async (req) => {
    const query = req.query as Record<string, unknown> | undefined;
    if (!queryDecodes(req.url)) throw new FleetkeyError('BAD_REQUEST', { detail: 'query escape is not UTF-8' });
    if (query !== undefined && Object.values(query).some((v) => Array.isArray(v))) throw refuse('repeated query parameter');
    if (!storable(req.params) || !storable(query) || !storable(req.body)) throw refuse('NUL or lone surrogate');
  });
  // ajv coerces a query's "Infinity" or "1e309" to Infinity and then skips the range checks
  // (they only run on finite numbers), so `?limit=Infinity` validates. Caught after coercion.
  app.addHook('preHandler', async (req) => {
    if (!exact(req.query) || !exact(req.params)) throw refuse('number out of range');
  });
}
