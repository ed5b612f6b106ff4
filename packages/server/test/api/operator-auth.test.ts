import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

describe.each(DIALECTS)('operator access over HTTP on %s', (dialect) => {
  let t: TestServer;
  const tokens: Record<string, string> = {};
  beforeAll(async () => {
    t = await startTestServer(dialect);
    for (const role of ['operator', 'viewer', 'manufacturing'] as const) {
      const r = await t.call('POST', '/v1/tokens', { body: { role, name: `${role} bot` } });
      expect(r.status).toBe(201);
      tokens[role] = r.body.secret;
    }
  });
  afterAll(async () => t?.stop());

  test('fail: missing, malformed, unknown and revoked tokens get 401 UNAUTHENTICATED, audited', async () => {
    const created = await t.call('POST', '/v1/tokens', { body: { role: 'viewer' } });
    await t.call('POST', `/v1/tokens/${created.body.token.id}/revoke`);
    const cases: (string | null)[] = [null, 'garbage', `fkt_${'A'.repeat(43)}`, created.body.secret];
    for (const token of cases) {
      const r = await t.call('GET', '/v1/devices', { token });
      expect(r.status).toBe(401);
      expect(r.body).toMatchObject({ code: 'UNAUTHENTICATED' });
      expect(JSON.stringify(r.body)).not.toContain('fkt_');
    }
    // One source, one code: audited in aggregate, the first at once (refusal-audit.test.ts counts the rest).
    const audit = await t.call('GET', '/v1/audit?action=auth.unauthenticated&limit=1000');
    expect(audit.body.entries.length).toBeGreaterThanOrEqual(1);
    expect(audit.body.entries[0].detail.reason).toBe('no credential');
    // Secrets never reach the log, not even the rejected ones.
    expect(JSON.stringify(audit.body)).not.toContain(created.body.secret);
  });

  test('fail: a role without the permission gets 403 FORBIDDEN and the refusal is audited', async () => {
    const matrix: [string, string, string, unknown?][] = [
      ['viewer', 'POST', '/v1/devices', {}],
      ['viewer', 'POST', '/v1/tokens', { role: 'admin' }],
      ['operator', 'POST', '/v1/tokens', { role: 'admin' }],
      ['operator', 'GET', '/v1/webhooks'],
      ['manufacturing', 'POST', '/v1/names', { name: 'x' }],
      ['manufacturing', 'GET', '/v1/audit'],
      ['viewer', 'POST', '/v1/audit/verify'],
      // Releasing a device's evidence lets other hardware claim it: admin only (issue 10).
      ['operator', 'POST', '/v1/devices/0d1f2e3c-4b5a-4697-8a1b-2c3d4e5f6a7b/evidence/reset', { reason: 'new TPM' }],
      ['manufacturing', 'POST', '/v1/devices/0d1f2e3c-4b5a-4697-8a1b-2c3d4e5f6a7b/evidence/reset', { reason: 'new TPM' }],
    ];
    for (const [role, method, path, body] of matrix) {
      const r = await t.call(method, path, { token: tokens[role]!, body });
      expect(r.status, `${role} ${method} ${path}`).toBe(403);
      expect(r.body.code).toBe('FORBIDDEN');
    }
    const audit = await t.call('GET', '/v1/audit?action=auth.forbidden&limit=1000');
    // One entry per actor and code at once (three roles); the repeats are counted in aggregate.
    expect(audit.body.entries.length).toBeGreaterThanOrEqual(new Set(matrix.map(([role]) => role)).size);
    expect(audit.body.entries[0].actor).toMatch(/^token:/);
  });

  test('roles allow what they grant', async () => {
    expect((await t.call('POST', '/v1/devices', { token: tokens['manufacturing']!, body: {} })).status).toBe(201);
    expect((await t.call('GET', '/v1/devices', { token: tokens['viewer']! })).status).toBe(200);
    expect((await t.call('POST', '/v1/names', { token: tokens['operator']!, body: { name: `op-${dialect}` } })).status).toBe(201);
  });

  test('tokens are shown once, stored hashed, carry a prefix and a last-used time', async () => {
    const list = await t.call('GET', '/v1/tokens');
    expect(JSON.stringify(list.body)).not.toMatch(/fkt_[A-Za-z0-9_-]{20}/);
    const op = list.body.tokens.find((x: { name: string }) => x.name === 'operator bot');
    expect(op.lastUsedAt).not.toBeNull();
    expect(tokens['operator']).toMatch(/^fkt_[A-Za-z0-9_-]{43}$/);
    const rows = await t.server.store.db.selectFrom('api_tokens').select('token_hash').execute();
    for (const r of rows) expect(r.token_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(rows)).not.toContain(tokens['operator']);
  });

  test('fail: the last admin token cannot be revoked', async () => {
    const list = await t.call('GET', '/v1/tokens');
    const admin = list.body.tokens.find((x: { role: string; revokedAt: string | null }) => x.role === 'admin' && x.revokedAt === null);
    const r = await t.call('POST', `/v1/tokens/${admin.id}/revoke`);
    expect(r.body.code).toBe('LAST_ADMIN_TOKEN');
  });

  test('health is the only open route; the OpenAPI document needs a token and lists the API', async () => {
    expect((await t.call('GET', '/healthz', { token: null })).status).toBe(200);
    expect((await t.call('GET', '/v1/openapi.json', { token: null })).status).toBe(401);
    const doc = await t.call('GET', '/v1/openapi.json', { token: tokens['viewer']! });
    expect(doc.status).toBe(200);
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/v1/devices', '/v1/names/{name}/replace', '/v1/audit/verify']));
    expect((await t.call('GET', '/v1/nope')).body.code).toBe('ROUTE_NOT_FOUND');
  });
});
