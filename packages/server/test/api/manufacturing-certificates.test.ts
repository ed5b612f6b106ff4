/**
 * The factory station's token (role manufacturing) registers devices and issues their birth
 * certificates. An operational certificate is what the gateway and the device plane accept as the
 * device itself: minted by a manufacturing token for a device in service, it would impersonate
 * that device with a key of the token holder's choosing, past every attestation and the evidence
 * bound to the device (issue 10).
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { deviceKey } from '../support/pki.js';
import { bundleOf, manufactured, provisionSymmetric, provisionX509 } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

describe.each(DIALECTS)('certificates a manufacturing token may issue (%s)', (dialect) => {
  let t: TestServer;
  let factory: string;
  beforeAll(async () => {
    t = await startTestServer(dialect);
    factory = (await t.call('POST', '/v1/tokens', { body: { role: 'manufacturing', name: 'line 3 station' } })).body.secret;
    await t.call('POST', '/v1/enrollments', { body: { label: 'robots', kind: 'group', attestation: 'x509' } });
  });
  afterAll(async () => t?.stop());

  test('fail: a manufacturing token cannot mint an operational certificate for a device in service (it would connect as that device)', async () => {
    const victim = await manufactured(t, 'kuka-kr16');
    expect((await provisionX509(t, victim)).status).toBe(200);
    const before = (await t.call('GET', `/v1/certificates?deviceId=${victim.id}`)).body.certificates.length;
    const attacker = deviceKey();
    const r = await t.call('POST', '/v1/certificates', { token: factory, body: { deviceId: victim.id, csr: attacker.csrPem, kind: 'operational' } });
    if (r.status === 201) {
      // What the certificate would be good for: the gateway takes it as the victim.
      const client = await mqtt.connectAsync(t.server.mqttUrl!, { clientId: victim.id, key: attacker.keyPem, cert: r.body.chainPem, ca: bundleOf(t), reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 5 });
      client.end(true);
    }
    expect(r).toMatchObject({ status: 403, body: { code: 'FORBIDDEN' } });
    // Without a kind, the request means an operational certificate too.
    const implicit = await t.call('POST', '/v1/certificates', { token: factory, body: { deviceId: victim.id, csr: deviceKey().csrPem } });
    expect(implicit).toMatchObject({ status: 403, body: { code: 'FORBIDDEN' } });
    expect((await t.call('GET', `/v1/certificates?deviceId=${victim.id}`)).body.certificates).toHaveLength(before);
    const refusals = (await t.call('GET', `/v1/audit?subject=device:${victim.id}&limit=1000`)).body.entries.filter((e: { outcome: string; code: string }) => e.outcome === 'refused' && e.code === 'FORBIDDEN');
    expect(refusals.length).toBeGreaterThanOrEqual(2);
  });

  // A symmetric device's derived key is its evidence (issue 10): whoever derives it again after
  // the device was admitted re-admits the device with a key pair of their own.
  test('fail: a manufacturing token cannot derive the key of a device already admitted (it would re-provision it with its own key)', async () => {
    const group = (await t.call('POST', '/v1/enrollments', { body: { label: 'sensors', kind: 'group', attestation: 'symmetric' } })).body.enrollment.id;
    const victim = (await t.call('POST', '/v1/devices', { token: factory, body: { model: 'sensor' } })).body.id;
    const atFactory = await t.call('POST', `/v1/enrollments/${group}/derived-keys`, { token: factory, body: { deviceId: victim } });
    expect(atFactory.status).toBe(200);
    expect((await provisionSymmetric(t, victim, Buffer.from(atFactory.body.deviceKey, 'base64'))).status).toBe(200);
    const later = await t.call('POST', `/v1/enrollments/${group}/derived-keys`, { token: factory, body: { deviceId: victim } });
    if (later.status === 200) {
      const taken = await provisionSymmetric(t, victim, Buffer.from(later.body.deviceKey, 'base64'), deviceKey().csrPem, `provision/${victim}`, 600_000);
      expect(taken.status, 'the derived key re-provisions the device in service').toBe(200);
    }
    expect(later).toMatchObject({ status: 403, body: { code: 'FORBIDDEN' } });
    expect((await t.call('GET', `/v1/audit?subject=enrollment:${group}&limit=1000`)).body.entries.at(-1)).toMatchObject({ outcome: 'refused', code: 'FORBIDDEN' });
    // An admin (who may reset a device's evidence anyway) still can.
    expect((await t.call('POST', `/v1/enrollments/${group}/derived-keys`, { body: { deviceId: victim } })).status).toBe(200);
  });

  test('a manufacturing token issues birth certificates (kind idevid); an admin still issues operational ones', async () => {
    const id = (await t.call('POST', '/v1/devices', { token: factory, body: { model: 'kuka-kr16' } })).body.id;
    const idevid = await t.call('POST', '/v1/certificates', { token: factory, body: { deviceId: id, csr: deviceKey().csrPem, kind: 'idevid' } });
    expect(idevid.status, JSON.stringify(idevid.body)).toBe(201);
    const operational = await t.call('POST', '/v1/certificates', { body: { deviceId: id, csr: deviceKey().csrPem, kind: 'operational' } });
    expect(operational.status, JSON.stringify(operational.body)).toBe(201);
  });
});
