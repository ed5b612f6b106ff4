import { X509Certificate } from 'node:crypto';
import { createSasToken } from '@fleetkey/crypto';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mtlsPost } from '../support/mtls.js';
import { deviceKey } from '../support/pki.js';
import { bundleOf, manufactured, provisionSymmetric, provisionX509 } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

describe('certificate-less devices at the gateway: SAS connect tokens and ES256 session tokens', () => {
  let t: TestServer;
  let sensor: { id: string; key: Buffer };
  let robot: { id: string; keyPem: string; chainPem: string; serial: string };
  const connectWith = (clientId: string, password: string) =>
    mqtt.connectAsync(t.server.mqttUrl!, { clientId, username: clientId, password, protocolVersion: 5, ca: bundleOf(t), reconnectPeriod: 0, connectTimeout: 5000 });
  const sas = (resource: string, key: Buffer, ms = 300_000) => createSasToken({ resource, expiresAt: new Date(Date.now() + ms), key });

  beforeAll(async () => {
    t = await startTestServer('sqlite');
    const g = await t.call('POST', '/v1/enrollments', { body: { label: 'sensors', kind: 'group', attestation: 'symmetric' } });
    const id = (await t.call('POST', '/v1/devices', { body: {} })).body.id as string;
    const key = Buffer.from((await t.call('POST', `/v1/enrollments/${g.body.enrollment.id}/derived-keys`, { body: { deviceId: id } })).body.deviceKey, 'base64');
    expect((await provisionSymmetric(t, id, key)).status).toBe(200);
    sensor = { id, key };
    await t.call('POST', '/v1/enrollments', { body: { label: 'robots', kind: 'group', attestation: 'x509' } });
    const m = await manufactured(t);
    const op = deviceKey();
    const r = await provisionX509(t, m, op.csrPem);
    robot = { id: m.id, keyPem: op.keyPem, chainPem: r.body.chainPem, serial: new X509Certificate(r.body.certificatePem).serialNumber.toLowerCase() };
  });
  afterAll(async () => t?.stop());

  test('a symmetric-key device connects with a SAS token over mqtt/<id> and its data is stored', async () => {
    const c = await connectWith(sensor.id, sas(`mqtt/${sensor.id}`, sensor.key));
    await c.publishAsync(`devices/${sensor.id}/telemetry`, JSON.stringify({ t: 21.5 }), { qos: 1 });
    await c.endAsync();
    expect((await t.call('GET', `/v1/data/telemetry?deviceId=${sensor.id}`)).body.points[0].payload).toEqual({ t: 21.5 });
  });

  test('fail: wrong key, wrong resource, too long a lifetime, another device\'s name', async () => {
    for (const pw of [sas(`mqtt/${sensor.id}`, Buffer.alloc(32, 7)), sas(`provision/${sensor.id}`, sensor.key), sas(`mqtt/${sensor.id}`, sensor.key, 7_200_000)]) {
      await expect(connectWith(sensor.id, pw)).rejects.toThrow(/[Bb]ad [Uu]ser [Nn]ame or [Pp]assword|134/);
    }
    await expect(connectWith(robot.id, sas(`mqtt/${robot.id}`, sensor.key))).rejects.toThrow(/134|[Bb]ad/);
  });

  test('fail: a certificate from a foreign CA naming a real device is refused at CONNECT, and audited', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, writeFileSync, readFileSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'foreign-'));
    try {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      writeFileSync(join(dir, 'k.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
      execFileSync('openssl', ['req', '-x509', '-new', '-key', join(dir, 'k.pem'), '-subj', `/CN=${robot.id}`, '-days', '1', '-out', join(dir, 'c.pem')]);
      const keyPem = readFileSync(join(dir, 'k.pem'), 'utf8');
      const cert = readFileSync(join(dir, 'c.pem'), 'utf8');
      await expect(
        mqtt.connectAsync(t.server.mqttUrl!, { clientId: robot.id, key: keyPem, cert, ca: bundleOf(t), protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000 }),
      ).rejects.toThrow(/[Nn]ot authorized|135/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a device with a certificate gets a session token over mTLS and connects with it, without TLS client auth', async () => {
    const r = await mtlsPost(`${t.server.deviceUrl}/device/v1/session-token`, {}, { ca: bundleOf(t), cert: robot.chainPem, key: robot.keyPem });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.deviceId).toBe(robot.id);
    const [header, payload] = (r.body.token as string).split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
    expect(header).toMatchObject({ alg: 'ES256' });
    expect(payload).toMatchObject({ sub: robot.id, aud: 'fleetkey-gateway', x5s: robot.serial });
    expect(payload.exp - payload.iat).toBeLessThanOrEqual(3600);
    const c = await connectWith(robot.id, r.body.token);
    await c.publishAsync(`devices/${robot.id}/diagnostics`, JSON.stringify({ ok: 1 }), { qos: 1 });
    // Revoking the certificate the token was issued against voids the token and cuts nothing else.
    await c.endAsync();
    await t.call('POST', `/v1/certificates/${robot.serial}/revoke`, { body: { reason: 'keyCompromise' } });
    await expect(connectWith(robot.id, r.body.token)).rejects.toThrow(/[Nn]ot authorized|135/);
  });

  test('a symmetric device gets a session token with a SAS over session/<id>; forged tokens are refused', async () => {
    const r = await mtlsPost(`${t.server.deviceUrl}/device/v1/session-token`, { deviceId: sensor.id, token: sas(`session/${sensor.id}`, sensor.key) }, { ca: bundleOf(t) });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const c = await connectWith(sensor.id, r.body.token);
    await c.endAsync();
    const [h, p, s] = (r.body.token as string).split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: robot.id })).toString('base64url')}.${s}`;
    await expect(connectWith(robot.id, forged)).rejects.toThrow(/134|[Bb]ad/);
    const refused = await mtlsPost(`${t.server.deviceUrl}/device/v1/session-token`, { deviceId: sensor.id, token: sas(`session/${sensor.id}`, Buffer.alloc(32, 1)) }, { ca: bundleOf(t) });
    expect(refused).toMatchObject({ status: 401, body: { code: 'UNAUTHENTICATED' } });
  });
});
