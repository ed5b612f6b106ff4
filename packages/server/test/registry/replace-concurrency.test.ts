import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const N = 50;

describe.each(DIALECTS)('concurrent replaces of one name on %s', (dialect) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(dialect);
  });
  afterAll(async () => t?.stop());

  const device = async (): Promise<string> => (await t.call('POST', '/v1/devices', { body: {} })).body.id;
  async function boundName(): Promise<{ name: string; holder: string; spares: string[] }> {
    const name = `r-${randomUUID().slice(0, 13)}`;
    const holder = await device();
    await t.call('POST', '/v1/names', { body: { name } });
    expect((await t.call('POST', `/v1/names/${name}/bind`, { body: { deviceId: holder } })).status).toBe(200);
    const spares: string[] = [];
    for (let i = 0; i < N; i++) spares.push(await device());
    return { name, holder, spares };
  }
  const history = async (name: string): Promise<Array<{ deviceId: string; from: string; to: string | null }>> =>
    (await t.call('GET', `/v1/names/${name}/history`)).body.bindings;

  test('fail: a replace that does not say which device it replaces is refused and changes nothing', async () => {
    const { name, holder, spares } = await boundName();
    const res = await Promise.all(spares.map((d) => t.call('POST', `/v1/names/${name}/replace`, { body: { deviceId: d, revokeOld: true } })));
    expect(res.map((r) => r.status)).toEqual(Array(N).fill(400));
    expect(res.map((r) => r.body.code)).toEqual(Array(N).fill('VALIDATION_FAILED'));
    expect((await history(name)).map((b) => b.deviceId)).toEqual([holder]);
    expect((await t.call('GET', `/v1/devices/${holder}`)).body.status).toBe('manufactured');
  });

  test(`race: of ${N} overlapping replaces of the binding they all saw, exactly one commits; the others get BINDING_CONFLICT`, async () => {
    const { name, holder, spares } = await boundName();
    const res = await Promise.all(
      spares.map((d) => t.call('POST', `/v1/names/${name}/replace`, { body: { deviceId: d, expectedDeviceId: holder, revokeOld: true } })),
    );
    const won = res.filter((r) => r.status === 200);
    expect(won).toHaveLength(1);
    expect(res.filter((r) => r.status !== 200).map((r) => r.body.code)).toEqual(Array(N - 1).fill('BINDING_CONFLICT'));
    const winner = won[0]!.body.name.deviceId as string;
    expect(won[0]!.body.previousDeviceId).toBe(holder);
    const h = await history(name);
    expect(h.map((b) => b.deviceId)).toEqual([holder, winner]);
    expect(h[0]!.to).toBe(h[1]!.from);
    // Only the device every caller saw was revoked; the losers revoked nothing.
    const revoked = [];
    for (const d of [holder, ...spares]) if ((await t.call('GET', `/v1/devices/${d}`)).body.status === 'revoked') revoked.push(d);
    expect(revoked).toEqual([holder]);
  }, 60_000);

  test(`race: ${N} operators each reading the holder then replacing it leave one chain: every committed replace took the name from the previous one's device`, async () => {
    const { name, holder, spares } = await boundName();
    const res = await Promise.all(
      spares.map(async (d) => {
        const seen = (await t.call('GET', `/v1/names/${name}`)).body.deviceId as string;
        return t.call('POST', `/v1/names/${name}/replace`, { body: { deviceId: d, expectedDeviceId: seen, revokeOld: true } });
      }),
    );
    const won = res.filter((r) => r.status === 200);
    expect(won.length).toBeGreaterThanOrEqual(1);
    expect(res.filter((r) => r.status !== 200).map((r) => r.body.code)).toEqual(Array(N - won.length).fill('BINDING_CONFLICT'));
    const h = await history(name);
    expect(h).toHaveLength(won.length + 1);
    expect(h[0]!.deviceId).toBe(holder);
    const byNew = new Map(won.map((r) => [r.body.name.deviceId as string, r.body.previousDeviceId as string]));
    for (let i = 1; i < h.length; i++) {
      expect(byNew.get(h[i]!.deviceId)).toBe(h[i - 1]!.deviceId);
      expect(h[i - 1]!.to).toBe(h[i]!.from);
    }
    // Every device that lost the name was one some caller saw and named; no loser revoked anything else.
    for (const b of h.slice(0, -1)) expect((await t.call('GET', `/v1/devices/${b.deviceId}`)).body.status).toBe('revoked');
    const last = h[h.length - 1]!.deviceId;
    expect((await t.call('GET', `/v1/devices/${last}`)).body.status).toBe('manufactured');
  }, 60_000);
});
