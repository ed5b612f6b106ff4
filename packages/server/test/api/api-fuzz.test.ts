import fc from 'fast-check';
import { ERRORS, isErrorCode } from '@fleetkey/protocol';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { tableDigest } from '../support/table-digest.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

interface Operation {
  readonly method: string;
  readonly path: string;
  readonly pathParams: string[];
  readonly queryParams: string[];
  readonly bodyProps: string[];
  readonly hasBody: boolean;
}

/** Values every path parameter refuses: upper case, spaces, NUL, a bad escape, past the length limit, traversal. */
const HOSTILE_PARAM = [
  'Infinity', '1e309', 'NaN', '-1', '%00', 'a%00b', '%E0%A4%A', '..%2F..%2Fetc', 'A B', '__proto__', 'x'.repeat(129), 'x'.repeat(300),
  '2016-12-31T23:59:60Z', '%F0%9F%92%A5', 'fkt_%00', '%20', 'DROP TABLE devices', '%ED%A0%80', '%FF', '%C0%AF',
];
/** Query values: each hostile for some parameter type (numbers, times, names, ids, strings). */
const HOSTILE_QUERY = [
  'Infinity', '-Infinity', '1e309', 'NaN', '-1', '0', '1.5', '0x10', '', '%00', 'a%00', '2016-12-31T23:59:60Z', '2026-02-30T00:00:00Z',
  '2026-01-01T00:00:00', 'true', '[]', '{}', 'x'.repeat(300), '%E0%A4%A', '__proto__', '99999999999999999999', '9007199254740993',
  '%ED%A0%80', '%FF', '%C0%AF', 'a%0Ab', '%uD800',
];
const HOSTILE_RAW_BODY = [
  '', ' ', 'null x', '{', '{"a":1,"a":2}', '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"x":1}}}', '[]', '1', '"x"', 'true',
  '{"reason":"a\\u0000b"}', '{"limit":1e309}', '\u0000', '{"a":' + '['.repeat(200) + ']'.repeat(200) + '}', '\uFEFF{}',
];

function operations(doc: { paths: Record<string, Record<string, any>> }): Operation[] {
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const params = (op.parameters ?? []) as { in: string; name: string }[];
      const body = op.requestBody?.content?.['application/json']?.schema;
      ops.push({
        method: method.toUpperCase(),
        path,
        pathParams: params.filter((p) => p.in === 'path').map((p) => p.name),
        queryParams: params.filter((p) => p.in === 'query').map((p) => p.name),
        bodyProps: Object.keys(body?.properties ?? {}),
        hasBody: method !== 'get' && method !== 'head',
      });
    }
  }
  return ops;
}

describe.each(DIALECTS)('API fuzz: every route of the OpenAPI document refuses malformed input with a catalogue 4xx and changes nothing, on %s', (dialect) => {
  let t: TestServer;
  let ops: Operation[];
  const valid: Record<string, string[]> = {};
  beforeAll(async () => {
    t = await startTestServer(dialect, {
      config: {
        http: { rateLimit: { perTokenPerMinute: 1_000_000, perTokenBurst: 1_000_000, perSourcePerMinute: 1_000_000, perSourceBurst: 1_000_000 } },
        // The webhook below points at a closed loopback port: loopback is refused unless allowlisted.
        webhooks: { allowPrivateDestinations: ['127.0.0.1/32'] },
      },
    });
    // Real objects, so a request with valid path parameters reaches the body and query checks.
    const device = (await t.call('POST', '/v1/devices', { body: { model: 'fuzz' } })).body.id as string;
    await t.call('POST', '/v1/names', { body: { name: 'fuzz-cell' } });
    await t.call('POST', '/v1/names/fuzz-cell/bind', { body: { deviceId: device } });
    const token = (await t.call('POST', '/v1/tokens', { body: { role: 'viewer' } })).body.token.id as string;
    const hook = (await t.call('POST', '/v1/webhooks', { body: { url: 'http://127.0.0.1:9/h', events: ['name.bound'] } })).body.webhook.id as string;
    const enrollment = (await t.call('POST', '/v1/enrollments', { body: { label: 'fuzz', kind: 'group', attestation: 'symmetric' } })).body.enrollment.id as string;
    Object.assign(valid, { id: [device, token, hook, enrollment], name: ['fuzz-cell'], action: ['suspend', 'revoke'], serial: ['0a1b2c3d4e5f'] });
    const doc = await t.call('GET', '/v1/openapi.json');
    ops = operations(doc.body);
    expect(ops.length).toBeGreaterThan(30);
  });
  afterAll(async () => t?.stop());

  test('fail: generated malformed params, queries and bodies get only catalogue 4xx, and no row changes', async () => {
    const before = await tableDigest(t.server);
    const seen = new Map<string, number>();
    const opArb = fc.integer({ min: 0, max: 10_000 }).map((i) => ops[i % ops.length]!);
    const request = opArb.chain((op) => {
      const flaws = (['query', ...(op.pathParams.length > 0 ? ['param'] : []), ...(op.hasBody ? ['body', 'raw', 'media'] : [])] as const).slice();
      return fc.record({
        op: fc.constant(op),
        // At least one flaw that must be refused, whatever else is generated.
        flaw: fc.constantFrom(...flaws),
        params: fc.tuple(...op.pathParams.map((p) => fc.constantFrom(...(valid[p] ?? ['x'])))),
        badParam: fc.oneof(fc.constantFrom(...HOSTILE_PARAM), fc.string({ minLength: 1, maxLength: 40 }).map((s) => `${encodeURIComponent(s)}%00`)),
        query: fc.array(fc.tuple(fc.oneof(fc.constantFrom(...op.queryParams, 'limit'), fc.string({ maxLength: 8 })), fc.oneof(fc.constantFrom(...HOSTILE_QUERY), fc.string({ maxLength: 20 }))), { maxLength: 4 }),
        body: fc.dictionary(fc.oneof(fc.constantFrom(...op.bodyProps, 'reason'), fc.string({ maxLength: 8 })), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }),
        raw: fc.constantFrom(...HOSTILE_RAW_BODY),
        pick: fc.nat(),
        withBody: fc.boolean(),
      });
    });

    await fc.assert(
      fc.asyncProperty(request, async ({ op, flaw, params, badParam, query, body, raw, pick, withBody }) => {
        const values = [...params];
        if (flaw === 'param') values[pick % values.length] = badParam;
        let i = 0;
        const path = op.path.replace(/\{[^}]+\}/g, () => (flaw === 'param' ? values[i++]! : encodeURIComponent(values[i++]!)));
        const q = query.map(([k, v]) => `${encodeURIComponent(k)}=${v.includes('%') ? v : encodeURIComponent(v)}`);
        // An unknown parameter is refused on every route: the flaw when nothing else is.
        if (flaw === 'query') q.push('fuzz_unknown=1');
        const url = `${path}${q.length > 0 ? `?${q.join('&')}` : ''}`;
        const opts: { body?: unknown; raw?: string; headers?: Record<string, string> } = {};
        if (op.hasBody) {
          if (flaw === 'raw') opts.raw = raw;
          else if (flaw === 'media') Object.assign(opts, { raw: JSON.stringify(body), headers: { 'content-type': 'text/plain' } });
          else if (flaw === 'body') opts.body = { ...body, fuzz_unknown: true };
          else if (withBody) opts.body = body;
        }
        const r = await t.call(op.method, url, opts);
        const where = `${op.method} ${url} ${JSON.stringify(opts).slice(0, 300)} → ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`;
        expect(r.status, where).toBeGreaterThanOrEqual(400);
        expect(r.status, where).toBeLessThan(500);
        expect(isErrorCode(String(r.body?.code)), where).toBe(true);
        expect(r.status, where).toBe(ERRORS[r.body.code as keyof typeof ERRORS].status);
        expect(r.body.message, where).toBe(ERRORS[r.body.code as keyof typeof ERRORS].message);
        expect(Object.keys(r.body).filter((k) => k !== 'details' && k !== 'movedTo').sort(), where).toEqual(['code', 'message', 'requestId']);
        seen.set(r.body.code, (seen.get(r.body.code) ?? 0) + 1);
      }),
      { numRuns: 600, seed: Number(process.env['FUZZ_SEED'] ?? Date.now() % 2 ** 31) },
    );
    expect(await tableDigest(t.server)).toEqual(before);
    // The run reached past the schema as well as into it.
    expect([...seen.keys()]).toEqual(expect.arrayContaining(['VALIDATION_FAILED', 'MALFORMED_JSON', 'UNSUPPORTED_MEDIA_TYPE']));
  }, 60_000);
});
