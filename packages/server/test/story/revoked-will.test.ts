/**
 * A device cut off by revocation leaves nothing behind: MQTT publishes a Will when a connection
 * ends without DISCONNECT [MQTT-3.1.2-8], but a Will set by a device whose certificate or status
 * has just been revoked would be a message from a revoked identity, stored after its revocation
 * (a compromised robot could have its last word, "all good", land once the operator cut it off).
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { deviceKey } from '../support/pki.js';
import { manufactured, provisionX509 } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

describe.each(DIALECTS)('Wills of revoked devices (%s)', (dialect) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(dialect);
    await t.call('POST', '/v1/enrollments', { body: { label: 'robots', kind: 'group', attestation: 'x509' } });
  });
  afterAll(async () => t?.stop());

  /** A provisioned robot connected over mTLS with a Will on its own diagnostics topic. */
  async function robotWithWill(version: 4 | 5): Promise<{ id: string; client: MqttClient; closed: Promise<void> }> {
    const m = await manufactured(t, 'kuka-kr16');
    const op = deviceKey();
    const r = await provisionX509(t, m, op.csrPem);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const client = await mqtt.connectAsync(t.server.mqttUrl!, {
      clientId: m.id,
      protocolVersion: version,
      key: op.keyPem,
      cert: r.body.chainPem,
      ca: r.body.caBundlePem,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      will: { topic: `devices/${m.id}/diagnostics`, payload: Buffer.from(JSON.stringify({ status: 'all good' })), qos: 1, retain: false },
    });
    const closed = new Promise<void>((resolve) => client.on('close', () => resolve()));
    return { id: m.id, client, closed };
  }

  const stored = async (id: string) => (await t.call('GET', `/v1/data/diagnostics?deviceId=${id}`)).body.points as unknown[];
  // Longer than the ingest linger and a group commit: a Will delivered at close would be stored by then.
  const settle = () => new Promise((r) => setTimeout(r, 500));

  test('control: a robot whose connection just drops leaves its Will (the MQTT behaviour stays)', async () => {
    const r = await robotWithWill(5);
    r.client.stream.destroy();
    await r.closed;
    await settle();
    expect(await stored(r.id)).toHaveLength(1);
  });

  test.each([5, 4] as const)('fail: a robot whose certificate is revoked cannot have its Will stored after the revocation (MQTT %s)', async (version) => {
    const r = await robotWithWill(version);
    const cert = (await t.call('GET', `/v1/certificates?deviceId=${r.id}`)).body.certificates.find((c: { kind: string; status: string }) => c.kind === 'operational' && c.status === 'valid');
    expect((await t.call('POST', `/v1/certificates/${cert.serial}/revoke`, { body: { reason: 'keyCompromise' } })).status).toBe(200);
    await r.closed;
    await settle();
    expect(await stored(r.id)).toEqual([]);
  });

  test.each([
    ['revoked', 'revoke'],
    ['suspended', 'suspend'],
  ] as const)('fail: a robot whose device is %s cannot have its Will stored after it', async (_status, action) => {
    const r = await robotWithWill(5);
    expect((await t.call('POST', `/v1/devices/${r.id}/${action}`, { body: { reason: 'stolen' } })).status).toBe(200);
    await r.closed;
    await settle();
    expect(await stored(r.id)).toEqual([]);
  });
});
