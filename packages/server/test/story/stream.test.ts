import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { deviceKey } from '../support/pki.js';
import { bundleOf, manufactured, provisionX509 } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

/** Reads server-sent events from a fetch body until `n` events arrived. */
async function readEvents(res: Response, n: number): Promise<{ event: string; data: any }[]> {
  const reader = res.body!.getReader();
  const out: { event: string; data: any }[] = [];
  let buf = '';
  while (out.length < n) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += new TextDecoder().decode(value);
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev = /^event: (.+)$/m.exec(block)?.[1];
      const data = /^data: (.+)$/m.exec(block)?.[1];
      if (ev !== undefined && data !== undefined) out.push({ event: ev, data: JSON.parse(data) });
    }
  }
  await reader.cancel();
  return out;
}

describe('live stream of accepted messages (server-sent events)', () => {
  let t: TestServer;
  let dev: { id: string; keyPem: string; chainPem: string };
  beforeAll(async () => {
    t = await startTestServer('sqlite');
    await t.call('POST', '/v1/enrollments', { body: { label: 'r', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'cell-{id8}' } } });
    const m = await manufactured(t);
    const op = deviceKey();
    const r = await provisionX509(t, m, op.csrPem);
    dev = { id: m.id, keyPem: op.keyPem, chainPem: r.body.chainPem };
  });
  afterAll(async () => t?.stop());

  test('a backend subscribes by name and receives what the device sent, stamped with its identity', async () => {
    const name = `cell-${dev.id.slice(0, 8)}`;
    const viewer = (await t.call('POST', '/v1/tokens', { body: { role: 'viewer' } })).body.secret;
    const res = await fetch(`${t.url}/v1/stream?name=${name}&kinds=diagnostics`, { headers: { authorization: `Bearer ${viewer}` } });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const events = readEvents(res, 1);
    const c = await mqtt.connectAsync(t.server.mqttUrl!, { clientId: dev.id, key: dev.keyPem, cert: dev.chainPem, ca: bundleOf(t), protocolVersion: 5, reconnectPeriod: 0 });
    await c.publishAsync(`devices/${dev.id}/telemetry`, JSON.stringify({ filtered: true }), { qos: 1 });
    await c.publishAsync(`devices/${dev.id}/diagnostics`, JSON.stringify({ partsPerHour: 7, deviceId: 'forged' }), { qos: 1 });
    const [e] = await events;
    expect(e).toMatchObject({ event: 'diagnostics', data: { deviceId: dev.id, name, kind: 'diagnostics', payload: { partsPerHour: 7 } } });
    await c.endAsync();
  });

  test('fail: no token, a role without data:read, or a malformed filter', async () => {
    expect((await fetch(`${t.url}/v1/stream?deviceId=${dev.id}`)).status).toBe(401);
    const mfg = (await t.call('POST', '/v1/tokens', { body: { role: 'manufacturing' } })).body.secret;
    expect((await fetch(`${t.url}/v1/stream?deviceId=${dev.id}`, { headers: { authorization: `Bearer ${mfg}` } })).status).toBe(403);
    const r = await t.call('GET', `/v1/stream?deviceId=${dev.id}&name=x`);
    expect(r.body.code).toBe('VALIDATION_FAILED');
    expect((await t.call('GET', `/v1/stream?deviceId=${dev.id}&kinds=secrets`)).body.code).toBe('VALIDATION_FAILED');
  });
});
