import { ERRORS } from '@fleetkey/protocol';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

/** The system clock, moved forward on demand: closes audit windows and refills budgets. */
const shiftingClock = () => {
  const c = { offset: 0, now: () => Date.now() + c.offset };
  return c;
};

const auditRows = async (t: TestServer): Promise<number> => (await t.server.store.db.selectFrom('audit_log').select('seq').execute()).length;

async function flood(n: number, send: () => Promise<{ status: number }>): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i += 50) statuses.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, async () => (await send()).status))));
  return statuses;
}

describe.each(DIALECTS)('refusals at the API edge cannot grow the audit log without bound, on %s', (dialect) => {
  let t: TestServer;
  const clock = shiftingClock();
  beforeAll(async () => {
    t = await startTestServer(dialect, { clock, config: { http: { rateLimit: { perTokenPerMinute: 100_000, perTokenBurst: 100_000, perSourcePerMinute: 100_000, perSourceBurst: 100_000 } } } });
  });
  afterAll(async () => t?.stop());

  test('fail: 2,000 bad requests of one token write two audit rows: the first, then the count', async () => {
    const before = await auditRows(t);
    const statuses = await flood(2000, () => t.call('GET', '/v1/devices?limit=0'));
    expect(new Set(statuses)).toEqual(new Set([400]));
    expect((await auditRows(t)) - before).toBe(1);
    // The window closes; the next refusal (any actor) or the timer writes the count.
    clock.offset += 61_000;
    await t.call('GET', '/v1/devices', { token: null });
    const summary = (await t.call('GET', '/v1/audit?action=http.refusals&limit=1000')).body.entries;
    expect(summary).toHaveLength(1);
    expect(summary[0]).toMatchObject({ code: 'VALIDATION_FAILED', outcome: 'refused', actor: expect.stringMatching(/^token:/), detail: { count: 1999 } });
    expect((await t.call('POST', '/v1/audit/verify')).body.ok).toBe(true);
  }, 60_000);

  test('fail: 500 requests with unknown tokens from one source write two audit rows', async () => {
    clock.offset += 61_000;
    const before = await auditRows(t);
    const statuses = await flood(500, () => t.call('GET', '/v1/devices', { token: `fkt_${'x'.repeat(43)}` }));
    expect(new Set(statuses)).toEqual(new Set([401]));
    expect((await auditRows(t)) - before).toBe(1);
    clock.offset += 61_000;
    await t.call('GET', '/v1/devices?limit=0');
    const counts = (await t.call('GET', '/v1/audit?action=http.refusals&limit=1000')).body.entries.filter((e: { code: string }) => e.code === 'UNAUTHENTICATED');
    expect(counts.map((e: { detail: { count: number } }) => e.detail.count)).toEqual([499]);
  });
});

describe('request rate limits answer 429 with Retry-After', () => {
  const clock = shiftingClock();
  let perToken: TestServer;
  let perSource: TestServer;
  beforeAll(async () => {
    perToken = await startTestServer('sqlite', { clock, config: { http: { rateLimit: { perTokenPerMinute: 60, perTokenBurst: 5, perSourcePerMinute: 100_000, perSourceBurst: 100_000 } } } });
    perSource = await startTestServer('postgres', { clock, config: { http: { rateLimit: { perTokenPerMinute: 100_000, perTokenBurst: 100_000, perSourcePerMinute: 60, perSourceBurst: 8 } } } });
  });
  afterAll(async () => {
    await perToken?.stop();
    await perSource?.stop();
  });

  test('fail: a token past its burst is refused with RATE_LIMITED and Retry-After; another token is not', async () => {
    const other = (await perToken.call('POST', '/v1/tokens', { body: { role: 'viewer' } })).body.secret as string;
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await perToken.call('GET', '/v1/devices')).status);
    expect(statuses.slice(0, 4)).toEqual([200, 200, 200, 200]);
    const r = await perToken.call('GET', '/v1/devices');
    expect(r.status).toBe(429);
    expect(r.body).toEqual({ code: 'RATE_LIMITED', message: ERRORS.RATE_LIMITED.message, requestId: expect.any(String) });
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(r.headers.get('retry-after'))).toBeLessThanOrEqual(2);
    expect((await perToken.call('GET', '/v1/devices', { token: other })).status).toBe(200);
    clock.offset += 2_000;
    expect((await perToken.call('GET', '/v1/devices')).status).toBe(200);
  });

  test('fail: a source past its burst is refused before its credential is looked at', async () => {
    clock.offset += 61_000;
    const statuses = await flood(12, () => perSource.call('GET', '/v1/devices', { token: null }));
    expect(statuses.filter((s) => s === 401)).toHaveLength(8);
    expect(statuses.filter((s) => s === 429)).toHaveLength(4);
    const r = await perSource.call('GET', '/v1/devices');
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
  });
});
