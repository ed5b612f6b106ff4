import { NoBody, NoQuery } from '@fleetkey/protocol';
import { Type } from '@sinclair/typebox';
import Fastify, { type FastifyInstance, type RouteShorthandOptions } from 'fastify';
import { describe, expect, test } from 'vitest';
import { requireRouteSchemas } from '../../src/http/route-schemas.js';
import { isRfc3339DateTime } from '../../src/http/rfc3339.js';
import { parseStrictJson } from '../../src/http/json-body.js';

async function boot(method: 'get' | 'post', url: string, opts: RouteShorthandOptions): Promise<void> {
  const app = Fastify() as unknown as FastifyInstance;
  requireRouteSchemas(app);
  try {
    app[method](url, opts, async () => ({}));
    await app.ready();
  } finally {
    await app.close();
  }
}

describe('a route without schemas cannot be registered', () => {
  const Params = Type.Object({ id: Type.String() }, { additionalProperties: false });
  test.each([
    ['no schema at all', 'post', '/x', {}],
    ['a POST without a body schema', 'post', '/x', { schema: { querystring: NoQuery } }],
    ['a GET without a query schema', 'get', '/x', { schema: {} }],
    ['an open query schema', 'get', '/x', { schema: { querystring: Type.Object({}) } }],
    ['a path parameter without a params schema', 'get', '/x/:id', { schema: { querystring: NoQuery } }],
    ['an open params schema', 'get', '/x/:id', { schema: { querystring: NoQuery, params: Type.Object({ id: Type.String() }) } }],
  ] as const)('fail: %s fails the boot', async (_label, method, url, opts) => {
    await expect(boot(method, url, opts as RouteShorthandOptions)).rejects.toThrow(/declares no/);
  });

  test('a route declaring every part boots', async () => {
    await expect(boot('post', '/x/:id', { schema: { querystring: NoQuery, params: Params, body: NoBody } })).resolves.toBeUndefined();
  });
});

describe('strict parsing helpers', () => {
  test.each([
    ['2016-12-31T23:59:60Z', false],
    ['2026-02-29T00:00:00Z', false],
    ['2024-02-29T00:00:00Z', true],
    ['2026-04-31T00:00:00Z', false],
    ['2026-01-01T24:00:00Z', false],
    ['2026-01-01T00:00:00+24:00', false],
    ['2026-01-01 00:00:00Z', false],
    ['2026-01-01T00:00:00', false],
    ['2026-01-01T00:00:00.123456789+05:30', true],
    ['2026-01-01t00:00:00z', true],
  ])('RFC 3339 %s → %s', (value, ok) => {
    expect(isRfc3339DateTime(value)).toBe(ok);
  });

  test.each([
    ['{"a":1,"a":2}', /duplicate/],
    ['{"a":{"b":1},"c":[{"d":1,"d":1}]}', /duplicate/],
    ['{"\\u0061":1,"a":2}', /duplicate/],
    ['{"x":{"__proto__":1}}', /__proto__/],
    ['{"constructor":{"prototype":{}}}', /constructor/],
    ['{"a":"}\\"{\\"a\\":","b":1}', null],
    ['[{"a":1},{"a":1}]', null],
  ])('JSON %s', (text, refused) => {
    if (refused === null) expect(() => parseStrictJson(text)).not.toThrow();
    else expect(() => parseStrictJson(text)).toThrow(expect.objectContaining({ code: 'MALFORMED_JSON', detail: expect.stringMatching(refused) }));
  });
});
