import { createSign, X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { mtlsPost } from '../support/mtls.js';
import { csrFor, deviceKey } from '../support/pki.js';
import { bundleOf, manufactured, provisionSymmetric, provisionX509 } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const auditReason = async (t: TestServer, deviceId: string) => {
  const a = await t.call('GET', `/v1/audit?subject=device:${deviceId}&limit=1000`);
  return a.body.entries.filter((e: { outcome: string }) => e.outcome === 'refused').at(-1);
};

describe.each(DIALECTS)('provisioning by X.509 and symmetric key on %s', (dialect) => {
  let t: TestServer;
  let x509Group: string;
  beforeAll(async () => {
    t = await startTestServer(dialect);
    const g = await t.call('POST', '/v1/enrollments', {
      body: { label: 'robots', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'cell-{serial}' }, tags: { site: 'plant-1' }, certificateValidity: '7d' },
    });
    expect(g.status).toBe(201);
    x509Group = g.body.enrollment.id;
  });
  afterAll(async () => t?.stop());

  test('two robots with birth certificates provision over mTLS, get names from the template and operational certificates', async () => {
    for (const serial of ['a1', 'b2']) {
      const d = await manufactured(t, 'kuka-kr16', serial);
      const op = deviceKey();
      const r = await provisionX509(t, d, op.csrPem);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toMatchObject({ deviceId: d.id, name: `cell-${serial}` });
      expect(JSON.stringify(r.body)).not.toContain('PRIVATE KEY');
      const cert = new X509Certificate(r.body.certificatePem);
      expect(cert.subject).toBe(`CN=${d.id}`);
      expect(cert.checkIssued(new X509Certificate(r.body.chainPem.split('-----END CERTIFICATE-----')[1] + '-----END CERTIFICATE-----'))).toBe(true);
      const life = Date.parse(cert.validTo) - Date.parse(cert.validFrom);
      expect(life).toBe(7 * 86_400_000 + 5 * 60_000);
      expect((await t.call('GET', `/v1/devices/${d.id}`)).body).toMatchObject({ status: 'provisioned', name: `cell-${serial}` });
      expect((await t.call('GET', `/v1/names/cell-${serial}`)).body.tags).toEqual({ site: 'plant-1' });
      const certs = (await t.call('GET', `/v1/certificates?deviceId=${d.id}`)).body.certificates;
      expect(certs.find((c: { kind: string }) => c.kind === 'operational').method).toBe(`x509:${x509Group}`);
    }
    expect((await t.call('GET', `/v1/enrollments/${x509Group}`)).body.devicesProvisioned).toBe(2);
  });

  test('re-provisioning under `keep` keeps the name and supersedes the previous certificate', async () => {
    const d = await manufactured(t, 'kuka-kr16', 'c3');
    const first = await provisionX509(t, d);
    const again = await provisionX509(t, d);
    expect(again.status).toBe(200);
    expect(again.body.name).toBe('cell-c3');
    const certs = (await t.call('GET', `/v1/certificates?deviceId=${d.id}`)).body.certificates.filter((c: { kind: string }) => c.kind === 'operational');
    expect(certs.map((c: { status: string }) => c.status).sort()).toEqual(['superseded', 'valid']);
    expect(new X509Certificate(first.body.certificatePem).serialNumber).not.toBe(new X509Certificate(again.body.certificatePem).serialNumber);
  });

  test('without mTLS, a signed single-use nonce proves possession of the IDevID key', async () => {
    const d = await manufactured(t, 'kuka-kr16', 'd4');
    const url = `${t.server.deviceUrl}/device/v1/provision`;
    const { nonce } = (await mtlsPost(`${url}/nonce`, {}, { ca: bundleOf(t) })).body;
    const sig = createSign('sha256').update(nonce).sign(d.idevid.key).toString('base64');
    const body = { csr: deviceKey().csrPem, idevidChainPem: d.idevidChainPem, nonce, nonceSignature: sig };
    const r = await mtlsPost(`${url}/x509`, body, { ca: bundleOf(t) });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const replay = await mtlsPost(`${url}/x509`, { ...body, csr: deviceKey().csrPem }, { ca: bundleOf(t) });
    expect(replay.body.code).toBe('PROVISIONING_REFUSED');
    expect((await auditReason(t, d.id)).detail.reason).toContain('unknown, used or expired nonce');
    const other = deviceKey();
    const { nonce: n2 } = (await mtlsPost(`${url}/nonce`, {}, { ca: bundleOf(t) })).body;
    const forged = await mtlsPost(`${url}/x509`, { ...body, nonce: n2, nonceSignature: createSign('sha256').update(n2).sign(other.key).toString('base64'), csr: deviceKey().csrPem }, { ca: bundleOf(t) });
    expect(forged.body.code).toBe('PROVISIONING_REFUSED');
  });

  describe('X.509 refusals: neutral to the device, precise in the audit log, nothing issued', () => {
    test('fail: a CSR whose key is the IDevID key', async () => {
      const d = await manufactured(t, 'kuka-kr16', 'e5');
      const r = await provisionX509(t, d, csrFor(d.idevid.keyPem));
      expect(r).toMatchObject({ status: 403, body: { code: 'PROVISIONING_REFUSED' } });
      expect((await auditReason(t, d.id)).code).toBe('CERT_KEY_REUSED');
    });

    test('fail: a revoked IDevID, and a revoked device', async () => {
      const d = await manufactured(t, 'kuka-kr16', 'f6');
      const idevid = (await t.call('GET', `/v1/certificates?deviceId=${d.id}`)).body.certificates[0];
      await t.call('POST', `/v1/certificates/${idevid.serial}/revoke`, { body: { reason: 'keyCompromise' } });
      expect((await provisionX509(t, d)).body.code).toBe('PROVISIONING_REFUSED');
      expect((await auditReason(t, d.id)).detail.reason).toContain('revoked');
      const d2 = await manufactured(t, 'kuka-kr16', 'g7');
      await t.call('POST', `/v1/devices/${d2.id}/revoke`, { body: {} });
      expect((await provisionX509(t, d2)).body.code).toBe('PROVISIONING_REFUSED');
    });

    test('fail: an IDevID from an untrusted CA (a self-made one, not our manufacturing CA)', async () => {
      const d = await manufactured(t);
      // An operational certificate from our issuing CA is not a birth certificate.
      const k = deviceKey();
      const op = await t.call('POST', '/v1/certificates', { body: { deviceId: d.id, csr: k.csrPem } });
      const r = await provisionX509(t, { idevid: k, idevidChainPem: op.body.chainPem });
      expect(r.body.code).toBe('PROVISIONING_REFUSED');
      expect((await auditReason(t, d.id)).detail.reason).toMatch(/untrusted|chain refused/);
    });

    test('fail: a disabled individual enrollment blocks just that device inside an enabled group', async () => {
      const d = await manufactured(t, 'kuka-kr16', 'h8');
      const ind = await t.call('POST', '/v1/enrollments', { body: { label: 'hold h8', kind: 'individual', attestation: 'x509', deviceId: d.id } });
      await t.call('POST', `/v1/enrollments/${ind.body.enrollment.id}/disable`);
      expect((await provisionX509(t, d)).body.code).toBe('PROVISIONING_REFUSED');
      expect((await auditReason(t, d.id)).detail.reason).toContain('disabled');
      const other = await manufactured(t, 'kuka-kr16', 'i9');
      expect((await provisionX509(t, other)).status).toBe(200);
    });

    test('fail: no client certificate and no nonce', async () => {
      const r = await mtlsPost(`${t.server.deviceUrl}/device/v1/provision/x509`, { csr: deviceKey().csrPem }, { ca: bundleOf(t) });
      expect(r.body.code).toBe('PROVISIONING_REFUSED');
    });
  });

  describe('symmetric keys', () => {
    let groupId: string;
    let groupKey: Buffer;
    beforeAll(async () => {
      const g = await t.call('POST', '/v1/enrollments', { body: { label: 'sensors', kind: 'group', attestation: 'symmetric', maxDevices: 2, reprovisioning: 'never' } });
      groupId = g.body.enrollment.id;
      groupKey = Buffer.from(g.body.groupKey, 'base64');
      expect(groupKey).toHaveLength(32);
      expect(JSON.stringify((await t.call('GET', `/v1/enrollments/${groupId}`)).body)).not.toContain(g.body.groupKey);
    });

    test('a device provisions with its derived key (HMAC-SHA256(groupKey, deviceId)); the station only ever sees that key', async () => {
      const id = (await t.call('POST', '/v1/devices', { body: { model: 'sensor' } })).body.id;
      const derived = await t.call('POST', `/v1/enrollments/${groupId}/derived-keys`, { body: { deviceId: id } });
      const r = await provisionSymmetric(t, id, Buffer.from(derived.body.deviceKey, 'base64'));
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.name).toBeNull(); // pending allocation
    });

    test('fail: wrong key, tampered resource, replayed token, `never` re-provisioning, device limit', async () => {
      const id = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
      const key = Buffer.from((await t.call('POST', `/v1/enrollments/${groupId}/derived-keys`, { body: { deviceId: id } })).body.deviceKey, 'base64');
      expect((await provisionSymmetric(t, id, Buffer.alloc(32, 1))).body.code).toBe('PROVISIONING_REFUSED');
      expect((await provisionSymmetric(t, id, key, deviceKey().csrPem, `provision/${id}x`)).body.code).toBe('PROVISIONING_REFUSED');
      const { createSasToken } = await import('@fleetkey/crypto');
      const token = createSasToken({ resource: `provision/${id}`, expiresAt: new Date(Date.now() + 60_000), key });
      const url = `${t.server.deviceUrl}/device/v1/provision/symmetric`;
      expect((await mtlsPost(url, { deviceId: id, token, csr: deviceKey().csrPem }, { ca: bundleOf(t) })).status).toBe(200);
      expect((await mtlsPost(url, { deviceId: id, token, csr: deviceKey().csrPem }, { ca: bundleOf(t) })).body.code).toBe('PROVISIONING_REFUSED');
      expect((await auditReason(t, id)).detail.reason).toMatch(/replayed|never/);
      const third = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
      const k3 = Buffer.from((await t.call('POST', `/v1/enrollments/${groupId}/derived-keys`, { body: { deviceId: third } })).body.deviceKey, 'base64');
      expect((await provisionSymmetric(t, third, k3)).body.code).toBe('PROVISIONING_REFUSED');
      expect((await auditReason(t, third)).detail.reason).toContain('limit');
    });

    test('fail: an expired token, a CSR whose signature is not by the key it names, an unknown device', async () => {
      const open = (await t.call('POST', '/v1/enrollments', { body: { label: 'open sensors', kind: 'group', attestation: 'symmetric' } })).body.enrollment.id;
      const id = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
      const key = Buffer.from((await t.call('POST', `/v1/enrollments/${open}/derived-keys`, { body: { deviceId: id } })).body.deviceKey, 'base64');
      const { createSasToken } = await import('@fleetkey/crypto');
      const url = `${t.server.deviceUrl}/device/v1/provision/symmetric`;
      const expired = createSasToken({ resource: `provision/${id}`, expiresAt: new Date(Date.now() - 1000), key });
      expect((await mtlsPost(url, { deviceId: id, token: expired, csr: deviceKey().csrPem }, { ca: bundleOf(t) })).body.code).toBe('PROVISIONING_REFUSED');
      expect((await auditReason(t, id)).detail.reason).toContain('expired');
      // A CSR naming one key but signed by another: swap the SubjectPublicKeyInfo of two CSRs.
      const a = Buffer.from(deviceKey().csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      const b = Buffer.from(deviceKey().csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      const spki = (der: Buffer) => der.indexOf(Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107', 'hex'));
      const swapped = Buffer.from(a);
      b.copy(swapped, spki(a), spki(b), spki(b) + 91);
      const csr = `-----BEGIN CERTIFICATE REQUEST-----\n${swapped.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
      const r = await provisionSymmetric(t, id, key, csr);
      expect(r.body.code).toBe('PROVISIONING_REFUSED');
      expect((await auditReason(t, id)).code).toBe('CSR_SIGNATURE_INVALID');
      // No enrollment admits a device nobody registered and no group vouches for.
      const stranger = '0d1f2e3c-4b5a-4697-8a1b-2c3d4e5f6a7b';
      expect((await provisionSymmetric(t, stranger, Buffer.alloc(32, 9))).body.code).toBe('PROVISIONING_REFUSED');
      expect((await t.call('GET', `/v1/devices/${stranger}`)).body.code).toBe('DEVICE_NOT_FOUND');
    });

    test('fail: an expired or disabled enrollment', async () => {
      const e = await t.call('POST', '/v1/enrollments', { body: { label: 'expired', kind: 'group', attestation: 'symmetric', expiresAt: new Date(Date.now() - 1000).toISOString() } });
      const id = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
      const { deriveDeviceKey } = await import('@fleetkey/crypto');
      const r = await provisionSymmetric(t, id, deriveDeviceKey(Buffer.from(e.body.groupKey, 'base64'), id));
      expect(r.body.code).toBe('PROVISIONING_REFUSED');
    });
  });
});
