import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readSessionCookie, setSessionCookie } from '../../src/http/console-cookie.js';
import { DIALECTS } from '../support/databases.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

/** Sign in with a bearer token; returns the cookie pair (`name=value`) and the CSRF token. */
async function signIn(t: TestServer, token: string): Promise<{ cookie: string; csrf: string; setCookie: string; secret: string }> {
  const r = await t.call('POST', '/v1/console/session', { token });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  const setCookie = r.headers.get('set-cookie') ?? '';
  const cookie = setCookie.split(';')[0]!;
  return { cookie, csrf: r.body.csrfToken as string, setCookie, secret: cookie.slice(cookie.indexOf('=') + 1) };
}

describe.each(DIALECTS)('web console sessions on %s', (dialect) => {
  let t: TestServer;
  const tokens: Record<string, string> = {};
  let deviceA: string;
  let deviceB: string;
  const withCookie = (method: string, path: string, s: { cookie: string }, extra: Record<string, string> = {}, body?: unknown) =>
    t.call(method, path, { token: null, headers: { cookie: s.cookie, ...extra }, ...(body === undefined ? {} : { body }) });

  beforeAll(async () => {
    t = await startTestServer(dialect);
    for (const role of ['operator', 'viewer'] as const) tokens[role] = (await t.call('POST', '/v1/tokens', { body: { role } })).body.secret;
    deviceA = (await t.call('POST', '/v1/devices', { body: { model: 'kr16' } })).body.id;
    deviceB = (await t.call('POST', '/v1/devices', { body: { model: 'kr16' } })).body.id;
    await t.call('POST', '/v1/names', { body: { name: 'line-03-left-welding-12' } });
    await t.call('POST', '/v1/names/line-03-left-welding-12/bind', { body: { deviceId: deviceA } });
  });
  afterAll(async () => t?.stop());

  const replaceBody = () => ({ deviceId: deviceB, expectedDeviceId: deviceA, revokeOld: true });
  const holder = async () => (await t.call('GET', '/v1/names/line-03-left-welding-12')).body.deviceId as string;

  test('fail: a mutation with the session cookie but no CSRF token, or a wrong one, is refused and changes nothing', async () => {
    const s = await signIn(t, tokens['operator']!);
    for (const extra of [{}, { 'x-csrf-token': 'A'.repeat(43) }, { 'x-csrf-token': `${s.csrf}x` }]) {
      const r = await withCookie('POST', '/v1/names/line-03-left-welding-12/replace', s, extra, replaceBody());
      expect(r.status).toBe(403);
      expect(r.body.code).toBe('CSRF_REFUSED');
    }
    expect(await holder()).toBe(deviceA);
    const audit = await t.call('GET', '/v1/audit?action=auth.csrf_refused&limit=10');
    expect(audit.body.entries.length).toBeGreaterThanOrEqual(1);
  });

  test('fail: a cross-site form post carrying the cookie (urlencoded, foreign Origin) is refused before its body is read', async () => {
    const s = await signIn(t, tokens['operator']!);
    const r = await t.call('POST', '/v1/names/line-03-left-welding-12/replace', {
      token: null,
      raw: `deviceId=${deviceB}&expectedDeviceId=${deviceA}&revokeOld=true`,
      headers: { cookie: s.cookie, origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('CSRF_REFUSED');
    // Even with the right CSRF token (leaked), a foreign Origin is refused.
    const r2 = await withCookie('POST', '/v1/names/line-03-left-welding-12/replace', s, { origin: 'https://evil.example', 'x-csrf-token': s.csrf }, replaceBody());
    expect(r2.status).toBe(403);
    expect(r2.body.code).toBe('CSRF_REFUSED');
    expect(await holder()).toBe(deviceA);
  });

  test('fail: a viewer session cannot replace (FORBIDDEN, as with its bearer token); the operator session can', async () => {
    const v = await signIn(t, tokens['viewer']!);
    const refused = await withCookie('POST', '/v1/names/line-03-left-welding-12/replace', v, { 'x-csrf-token': v.csrf }, replaceBody());
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('FORBIDDEN');
    expect((await t.call('POST', '/v1/names/line-03-left-welding-12/replace', { token: tokens['viewer']!, body: replaceBody() })).status).toBe(403);
    expect(await holder()).toBe(deviceA);
    // Reads work with the cookie alone (GET needs no CSRF token).
    expect((await withCookie('GET', '/v1/devices', v)).status).toBe(200);

    const o = await signIn(t, tokens['operator']!);
    const origin = t.url.replace(/\/$/, '');
    const ok = await withCookie('POST', '/v1/names/line-03-left-welding-12/replace', o, { 'x-csrf-token': o.csrf, origin }, replaceBody());
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body.oldDeviceRevoked).toBe(true);
    // The audit entry names the session's token, exactly as a bearer request would.
    const audit = await t.call('GET', '/v1/audit?action=name.replace&limit=5');
    expect(JSON.stringify(audit.body.entries)).toContain('token:');
    // Put the name back for the other tests (bind the fresh device B's name to a new device).
    const c = (await t.call('POST', '/v1/devices', { body: { model: 'kr16' } })).body.id as string;
    await t.call('POST', '/v1/names/line-03-left-welding-12/replace', { body: { deviceId: c, expectedDeviceId: deviceB } });
    deviceA = c;
    deviceB = (await t.call('POST', '/v1/devices', { body: { model: 'kr16' } })).body.id;
  });

  test('the cookie is HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP; only its hash is stored', async () => {
    const s = await signIn(t, tokens['viewer']!);
    expect(s.setCookie).toMatch(/^fleetkey-session=[A-Za-z0-9_-]{43}; /);
    for (const flag of ['HttpOnly', 'SameSite=Strict', 'Path=/', 'Max-Age=']) expect(s.setCookie).toContain(flag);
    expect(s.setCookie).not.toContain('Secure');
    const rows = await t.server.store.db.selectFrom('console_sessions').selectAll().execute();
    expect(JSON.stringify(rows)).not.toContain(s.secret);
    expect(rows.map((r) => r.secret_hash)).toContain(createHash('sha256').update(s.secret).digest('hex'));
    const me = await withCookie('GET', '/v1/console/session', s);
    expect(me.body).toMatchObject({ role: 'viewer', csrfToken: s.csrf });
  });

  test('fail: after logout, after expiry and after its token is revoked, the cookie is refused (401)', async () => {
    const s1 = await signIn(t, tokens['operator']!);
    expect((await withCookie('DELETE', '/v1/console/session', s1, { 'x-csrf-token': s1.csrf })).status).toBe(204);
    expect((await withCookie('GET', '/v1/devices', s1)).status).toBe(401);

    const s2 = await signIn(t, tokens['operator']!);
    await t.server.store.db.updateTable('console_sessions').set({ expires_at: Date.now() - 1 }).where('secret_hash', '=', createHash('sha256').update(s2.secret).digest('hex')).execute();
    const expired = await withCookie('GET', '/v1/devices', s2);
    expect(expired.status).toBe(401);
    expect(expired.body.code).toBe('UNAUTHENTICATED');

    const created = await t.call('POST', '/v1/tokens', { body: { role: 'operator' } });
    const s3 = await signIn(t, created.body.secret);
    expect((await withCookie('GET', '/v1/devices', s3)).status).toBe(200);
    await t.call('POST', `/v1/tokens/${created.body.token.id}/revoke`);
    expect((await withCookie('GET', '/v1/devices', s3)).status).toBe(401);
  });

  test('fail: a session cannot open another (no extension past expiry); a bearer cannot read or end a session', async () => {
    const s = await signIn(t, tokens['operator']!);
    const again = await withCookie('POST', '/v1/console/session', s, { 'x-csrf-token': s.csrf });
    expect(again.status).toBe(400);
    expect(again.body.code).toBe('SIGN_IN_NEEDS_TOKEN');
    expect((await t.call('GET', '/v1/console/session', { token: tokens['operator']! })).body.code).toBe('CONSOLE_SESSION_REQUIRED');
    expect((await withCookie('GET', '/v1/devices', { cookie: 'fleetkey-session=garbage' })).status).toBe(401);
  });

  test('console responses carry CSP without unsafe-inline, frame-ancestors none, nosniff and a referrer policy', async () => {
    const r = await fetch(`${t.url}/`);
    const csp = r.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('referrer-policy')).toBe('no-referrer');
    const traversal = await fetch(`${t.url}/assets/..%2f..%2fpackage.json`);
    expect([400, 404]).toContain(traversal.status);
  });

  test('device list: server-side search and filters with keyset pagination; summary by status', async () => {
    for (let i = 0; i < 5; i += 1) await t.call('POST', '/v1/devices', { body: { model: 'ur10' } });
    const page1 = await t.call('GET', '/v1/devices?model=ur10&limit=3');
    expect(page1.body.devices).toHaveLength(3);
    const page2 = await t.call('GET', `/v1/devices?model=ur10&limit=3&after=${page1.body.devices[2].id}`);
    expect(page2.body.devices).toHaveLength(2);
    expect(new Set([...page1.body.devices, ...page2.body.devices].map((d: { model: string }) => d.model))).toEqual(new Set(['ur10']));
    const byName = await t.call('GET', '/v1/devices?q=line-03-left');
    expect(byName.body.devices.map((d: { id: string }) => d.id)).toEqual([deviceA]);
    const byId = await t.call('GET', `/v1/devices?q=${deviceA.slice(0, 8)}`);
    expect(byId.body.devices.map((d: { id: string }) => d.id)).toContain(deviceA);
    // LIKE wildcards in q match themselves only.
    expect((await t.call('GET', '/v1/devices?q=line_03')).body.devices).toHaveLength(0);
    expect((await t.call('GET', '/v1/devices?q=%25')).status).toBe(400);
    const summary = await t.call('GET', '/v1/devices/summary', { token: tokens['viewer']! });
    expect(summary.body.total).toBeGreaterThanOrEqual(8);
    expect(summary.body.byStatus['revoked']).toBeGreaterThanOrEqual(1);
    // Nothing is connected to this server's gateway.
    expect(summary.body.online).toBe(0);
  });
});

describe('the session cookie over TLS', () => {
  test('is __Host- prefixed and Secure, and a plain-HTTP cookie name is not read there (no shadowing)', () => {
    const headers: Record<string, string> = {};
    const reply = { header: (k: string, v: string) => (headers[k] = v) };
    const tls = { protocol: 'https', headers: { cookie: 'fleetkey-session=planted; __Host-fleetkey-session=real' } };
    setSessionCookie(tls as never, reply as never, 'A'.repeat(43), Date.now() + 60_000);
    expect(headers['set-cookie']).toMatch(/^__Host-fleetkey-session=A{43}; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Strict; Secure$/);
    expect(headers['set-cookie']).not.toContain('Domain');
    expect(readSessionCookie(tls as never)).toBe('real');
    expect(readSessionCookie({ protocol: 'https', headers: { cookie: 'fleetkey-session=planted' } } as never)).toBeUndefined();
  });
});
