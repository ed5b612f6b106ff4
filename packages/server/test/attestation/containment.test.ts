/**
 * Issue 13: what quarantine, the connect requirement and the staleness actions do at the MQTT
 * gateway and the device plane, on SQLite and PostgreSQL. The AK is a software key recorded as
 * the device's TPM AK (the swtpm suite proves quotes from a real TPM); the device's connection,
 * certificate and credentials are real.
 */
import { createHash } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { mtlsPost } from '../support/mtls.js';
import { deviceKey } from '../support/pki.js';
import { manufactured, provisionX509 } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { softTpm } from './soft-tpm.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const PCRS = [0, 7];
const GOOD = { '0': sha('fw'), '7': sha('sb') };
const BAD = { ...GOOD, '7': sha('evil') };

describe.each(DIALECTS)('attestation containment (%s)', (dialect) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(dialect, { config: { attestation: { sweepIntervalMs: 100, perDevicePerMinute: 60, perDeviceBurst: 12 } } });
    await t.call('POST', '/v1/enrollments', { body: { label: 'robots', kind: 'group', attestation: 'x509' } });
  });
  afterAll(async () => t?.stop());

  async function policy(model: string, extra: Record<string, unknown> = {}) {
    const r = await t.call('PUT', '/v1/attestation/policies', { body: { scope: 'model', key: model, pcrs: PCRS, reference: { '0': [GOOD['0']], '7': [GOOD['7']] }, intervalSeconds: 1, maxAgeSeconds: 2, onFailure: 'quarantine', ...extra } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  }

  /** A provisioned robot of `model` whose recorded evidence is a TPM with a software AK. */
  async function robot(model: string) {
    const m = await manufactured(t, model);
    const op = deviceKey();
    const r = await provisionX509(t, m, op.csrPem);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const tpm = softTpm();
    await t.server.store.db.updateTable('device_evidence').set({ method: 'tpm', ak_public: tpm.akPublic.toString('base64') }).where('device_id', '=', m.id).where('reset_at', 'is', null).execute();
    const tls = { ca: r.body.caBundlePem as string, cert: r.body.chainPem as string, key: op.keyPem };
    const attest = async (values: Record<string, string>) => {
      const n = await mtlsPost(`${t.server.deviceUrl}/device/v1/attestation/nonce`, {}, tls);
      expect(n.status, JSON.stringify(n.body)).toBe(200);
      const q = tpm.quote(n.body.pcrs, values, n.body.nonce);
      return mtlsPost(`${t.server.deviceUrl}/device/v1/attestation/quote`, { quote: q.quote.toString('base64'), signature: q.signature.toString('base64'), pcrs: values }, tls);
    };
    const connect = (): Promise<MqttClient> =>
      mqtt.connectAsync(t.server.mqttUrl!, { clientId: m.id, protocolVersion: 5, key: op.keyPem, cert: r.body.chainPem, ca: r.body.caBundlePem, reconnectPeriod: 0, connectTimeout: 5000 });
    return { id: m.id, tls, attest, connect };
  }
  const stored = async (id: string) => (await t.call('GET', `/v1/data/telemetry?deviceId=${id}`)).body.points as unknown[];

  test('fail: a quarantined device cannot publish data or receive commands over MQTT, cannot get a session token; released, it can again', async () => {
    await policy('q-robot');
    const r = await robot('q-robot');
    expect((await r.attest(GOOD)).body).toMatchObject({ verdict: 'trusted', quarantined: false });
    const c = await r.connect();
    try {
      await c.publishAsync(`devices/${r.id}/telemetry`, JSON.stringify({ t: 1 }), { qos: 1 });
      expect((await r.attest(BAD)).body).toMatchObject({ verdict: 'failed', code: 'ATTESTATION_PCR_POLICY', quarantined: true });
      // [MQTT-3.4.2.1] v5: a refused QoS 1 PUBLISH gets a PUBACK with 0x87 Not authorized; the connection stays.
      await expect(c.publishAsync(`devices/${r.id}/telemetry`, JSON.stringify({ t: 2 }), { qos: 1 })).rejects.toThrow();
      // SUBACK 0x87 Not authorized [MQTT-3.9.3]: no commands reach it while quarantined.
      await expect(c.subscribeAsync(`devices/${r.id}/commands/+`, { qos: 1 })).rejects.toThrow(/Not authorized/);
      const tok = await mtlsPost(`${t.server.deviceUrl}/device/v1/session-token`, {}, r.tls);
      expect([tok.status, tok.body.code]).toEqual([403, 'DEVICE_QUARANTINED']);
      expect((await t.call('GET', `/v1/devices/${r.id}/attestations`)).body).toMatchObject({ quarantined: true, quarantineReason: expect.stringMatching(/PCR 7/) });
      await expect.poll(async () => (await t.call('GET', `/v1/audit?subject=device:${r.id}&limit=1000`)).body.entries.some((e: { action: string; code: string }) => e.action === 'gateway.refused' && e.code === 'quarantined'), { timeout: 15_000 }).toBe(true);
      // Released by a good attestation.
      expect((await r.attest(GOOD)).body).toMatchObject({ verdict: 'trusted', quarantined: false });
      await c.publishAsync(`devices/${r.id}/telemetry`, JSON.stringify({ t: 3 }), { qos: 1 });
      expect((await c.subscribeAsync(`devices/${r.id}/commands/+`, { qos: 1 }))[0]?.qos).toBe(1);
      await expect.poll(async () => (await stored(r.id)).length, { timeout: 5000 }).toBe(2);
    } finally {
      await c.endAsync();
    }
  }, 60_000);

  test('the server asks a device to attest over MQTT (devices/{id}/attestation/request), also while quarantined; another device cannot subscribe to it', async () => {
    await policy('ask-robot');
    const r = await robot('ask-robot');
    const other = await robot('ask-robot');
    expect((await r.attest(GOOD)).body.verdict).toBe('trusted');
    expect((await t.call('POST', `/v1/devices/${r.id}/attestation/request`, { body: {} })).body).toEqual({ requested: false });
    expect((await r.attest(BAD)).body.quarantined).toBe(true);
    const c = await r.connect();
    const o = await other.connect();
    try {
      expect((await c.subscribeAsync(`devices/${r.id}/attestation/request`, { qos: 1 }))[0]?.qos).toBe(0);
      await expect(o.subscribeAsync(`devices/${r.id}/attestation/request`, { qos: 0 })).rejects.toThrow(/Not authorized/);
      const got = new Promise<string>((resolve) => c.on('message', (topic) => resolve(topic)));
      expect((await t.call('POST', `/v1/devices/${r.id}/attestation/request`, { body: {} })).body).toEqual({ requested: true });
      expect(await got).toBe(`devices/${r.id}/attestation/request`);
      const viewer = (await t.call('POST', '/v1/tokens', { body: { role: 'viewer' } })).body.secret;
      expect((await t.call('POST', `/v1/devices/${r.id}/attestation/request`, { token: viewer, body: {} })).status).toBe(403);
    } finally {
      await c.endAsync();
      await o.endAsync();
    }
  }, 60_000);

  test('fail: with requireOnConnect, a device without a trusted attestation younger than max age cannot connect; after one it can', async () => {
    await policy('gated-robot', { requireOnConnect: true });
    const r = await robot('gated-robot');
    await expect(r.connect()).rejects.toThrow();
    expect((await r.attest(GOOD)).body.verdict).toBe('trusted');
    const c = await r.connect();
    await c.endAsync();
  }, 60_000);

  test('fail: a device that stops attesting under onStale revoke is marked stale and revoked (device.attestation_stale, device.status_changed)', async () => {
    await policy('stale-robot', { onStale: 'revoke' });
    const r = await robot('stale-robot');
    expect((await r.attest(GOOD)).body.verdict).toBe('trusted');
    await expect.poll(async () => (await t.call('GET', `/v1/devices/${r.id}`)).body.status, { timeout: 8000, interval: 100 }).toBe('revoked');
    const a = (await t.call('GET', `/v1/devices/${r.id}/attestations`)).body;
    expect(a.status).toBe('stale');
    expect(a.history[0]).toMatchObject({ verdict: 'stale', action: 'revoke' });
    const ev = await t.server.store.db.selectFrom('events').select('type').where('subject', '=', `device:${r.id}`).execute();
    expect(ev.map((e) => e.type)).toEqual(expect.arrayContaining(['device.attestation_stale', 'device.status_changed']));
  }, 30_000);

  test('fail: a device cannot hammer the attestation routes: past its per-device budget it gets 429 RATE_LIMITED, others are unaffected', async () => {
    await policy('noisy-robot');
    const noisy = await robot('noisy-robot');
    const quiet = await robot('noisy-robot');
    const codes: number[] = [];
    for (let i = 0; i < 35; i++) codes.push((await mtlsPost(`${t.server.deviceUrl}/device/v1/attestation/nonce`, {}, noisy.tls)).status);
    // Burst 12, then one per second: 35 requests in a few seconds cannot all pass.
    expect(codes.filter((c) => c === 200).length).toBeLessThan(30);
    expect(codes.at(-1)).toBe(429);
    expect((await quiet.attest(GOOD)).body.verdict).toBe('trusted');
  }, 60_000);

  test('fail: malformed quote bodies are schema or catalogue refusals, never a 500, and change nothing', async () => {
    await policy('fuzz-robot');
    const r = await robot('fuzz-robot');
    const q = (body: unknown) => mtlsPost(`${t.server.deviceUrl}/device/v1/attestation/quote`, body, r.tls);
    const bodies: unknown[] = [
      {},
      { quote: 'AA==', signature: 'AA==', pcrs: {} },
      { quote: '!!', signature: 'AA==', pcrs: { '0': GOOD['0'] } },
      { quote: 'AA==', signature: 'AA==', pcrs: { '99': GOOD['0'] } },
      { quote: 'AA==', signature: 'AA==', pcrs: { '0': 'zz' } },
      { quote: 'AA==', signature: 'AA==', pcrs: { '0': GOOD['0'] }, extra: 1 },
      { quote: Buffer.alloc(5000).toString('base64'), signature: 'AA==', pcrs: {} },
      { quote: 'AA==', signature: 'AA==', pcrs: { '0': GOOD['0'] }, eventLog: 'AAAA' },
    ];
    for (const b of bodies) {
      const res = await q(b);
      expect(res.status, JSON.stringify(res.body)).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(typeof res.body.code).toBe('string');
    }
    expect((await t.call('GET', `/v1/devices/${r.id}/attestations`)).body).toMatchObject({ status: 'never', history: [] });
  }, 30_000);
});
