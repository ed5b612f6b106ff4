import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

describe.each(DIALECTS)('smoke on %s', (dialect) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(dialect);
  });
  afterAll(async () => t?.stop());

  test('device + name + bind', async () => {
    const d = await t.call('POST', '/v1/devices', { body: { model: 'welder' } });
    expect(d.status).toBe(201);
    const n = await t.call('POST', '/v1/names', { body: { name: 'line-03-left-welding-12', tags: { site: 'plant-1' } } });
    expect(n.status).toBe(201);
    const b = await t.call('POST', '/v1/names/line-03-left-welding-12/bind', { body: { deviceId: d.body.id } });
    expect(b.status).toBe(200);
    expect(b.body.deviceId).toBe(d.body.id);
    const v = await t.call('POST', '/v1/audit/verify');
    expect(v.body).toMatchObject({ ok: true });
  });
});
