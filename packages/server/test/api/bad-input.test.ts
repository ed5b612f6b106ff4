import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

describe.each(DIALECTS)('bad input is refused and changes nothing, on %s', (dialect) => {
  let t: TestServer;
  let before: { devices: number; names: number };
  const counts = async () => ({
    devices: (await t.server.store.db.selectFrom('devices').select('id').execute()).length,
    names: (await t.server.store.db.selectFrom('names').select('id').execute()).length,
  });
  beforeAll(async () => {
    t = await startTestServer(dialect, { config: {} });
    before = await counts();
  });
  afterAll(async () => t?.stop());

  const cases: [string, string, string, { body?: unknown; raw?: string; headers?: Record<string, string> }, string][] = [
    ['unknown field', 'POST', '/v1/devices', { body: { model: 'x', admin: true } }, 'VALIDATION_FAILED'],
    ['wrong type', 'POST', '/v1/devices', { body: { model: 42 } }, 'VALIDATION_FAILED'],
    ['non-UUID id', 'POST', '/v1/devices', { body: { id: 'not-a-uuid' } }, 'VALIDATION_FAILED'],
    ['uppercase name', 'POST', '/v1/names', { body: { name: 'Line-03' } }, 'VALIDATION_FAILED'],
    ['name too long', 'POST', '/v1/names', { body: { name: 'a'.repeat(129) } }, 'VALIDATION_FAILED'],
    ['bad tag key', 'POST', '/v1/names', { body: { name: 'ok-name', tags: { 'Bad Key': 'v' } } }, 'VALIDATION_FAILED'],
    ['string for boolean', 'POST', '/v1/names/ok-name/replace', { body: { deviceId: '8c7d4b1e-2f3a-4c5d-9e6f-7a8b9c0d1e2f', revokeOld: 'true' } }, 'VALIDATION_FAILED'],
    ['malformed JSON', 'POST', '/v1/devices', { raw: '{"model": ' }, 'MALFORMED_JSON'],
    ['prototype poisoning', 'POST', '/v1/devices', { raw: '{"model":"x","__proto__":{"admin":true}}' }, 'MALFORMED_JSON'],
    ['wrong media type', 'POST', '/v1/devices', { raw: 'model=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 'UNSUPPORTED_MEDIA_TYPE'],
    ['oversized body', 'POST', '/v1/devices', { raw: JSON.stringify({ model: 'x'.repeat(200_000) }) }, 'BODY_TOO_LARGE'],
    ['bad path param', 'GET', '/v1/devices/..%2F..%2Fetc', {}, 'VALIDATION_FAILED'],
    ['unknown query param', 'GET', '/v1/devices?admin=1', {}, 'VALIDATION_FAILED'],
    ['limit out of range', 'GET', '/v1/devices?limit=100000', {}, 'VALIDATION_FAILED'],
  ];

  test.each(cases)('fail: %s', async (_label, method, path, opts, code) => {
    const r = await t.call(method, path, opts);
    expect(r.body.code).toBe(code);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(typeof r.body.requestId).toBe('string');
    expect(await counts()).toEqual(before);
  });

  test('validation refusals by an authenticated operator are audited (in aggregate: the first of each window at once)', async () => {
    const r = await t.call('GET', '/v1/audit?limit=1000');
    const refused = r.body.entries.filter((e: { outcome: string; code: string }) => e.outcome === 'refused' && e.code === 'VALIDATION_FAILED');
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(refused[0].actor).toMatch(/^token:/);
  });
});
