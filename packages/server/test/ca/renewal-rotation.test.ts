import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { importRootKey } from '@fleetkey/crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mtlsPost } from '../support/mtls.js';
import { deviceKey } from '../support/pki.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

describe('renewal over mTLS, rotation, root export', () => {
  let t: TestServer;
  let bundle: string;
  const renew = (csr: string, cred: { cert?: string; key?: string } = {}) => mtlsPost(`${t.server.deviceUrl}/device/v1/renew`, { csr }, { ca: bundle, ...cred });
  const provisioned = async () => {
    const id = (await t.call('POST', '/v1/devices', { body: {} })).body.id as string;
    const k = deviceKey();
    const r = await t.call('POST', '/v1/certificates', { body: { deviceId: id, csr: k.csrPem, validity: '2h' } });
    // A certificate from the operator path is for a device that will come online.
    await t.server.store.db.updateTable('devices').set({ status: 'active' }).where('id', '=', id).execute();
    return { id, keyPem: k.keyPem, certPem: r.body.chainPem as string, serial: r.body.certificate.serial as string };
  };
  beforeAll(async () => {
    t = await startTestServer('sqlite', { config: {} });
    bundle = readFileSync(join(t.dataDir, 'ca-bundle.pem'), 'utf8');
  });
  afterAll(async () => t?.stop());

  test('a device renews with a new key; the old certificate is superseded with a grace period', async () => {
    const d = await provisioned();
    const next = deviceKey();
    const r = await renew(next.csrPem, { cert: d.certPem, key: d.keyPem });
    expect(r.status).toBe(200);
    expect(Date.parse(r.body.renewAfter)).toBeLessThan(Date.parse(r.body.notAfter));
    const old = await t.call('GET', `/v1/certificates/${d.serial}`);
    expect(old.body).toMatchObject({ status: 'superseded', supersededBy: r.body.serial });
    const fresh = await t.call('GET', `/v1/certificates/${r.body.serial}`);
    expect(fresh.body).toMatchObject({ status: 'valid', method: 'operator', deviceId: d.id });
    // Within the grace period the old certificate still authenticates; after it, no longer.
    expect(t.server.ca.revocations.status(d.serial, Date.now())).toBe('good');
    expect(t.server.ca.revocations.status(d.serial, Date.now() + 3_600_001)).toBe('superseded');
    // The superseded certificate cannot renew again.
    const again = await renew(deviceKey().csrPem, { cert: d.certPem, key: d.keyPem });
    expect(again.body.code).toBe('CERT_RENEWAL_REFUSED');
  });

  test('fail: renewal without a client certificate, with the same key, with a revoked certificate, or for an IDevID', async () => {
    const none = await renew(deviceKey().csrPem);
    expect(none).toMatchObject({ status: 403, body: { code: 'CERT_RENEWAL_REFUSED' } });

    const d = await provisioned();
    const sameKey = await renew(deviceKey().csrPem.replace(/[\s\S]*/, (await import('../support/pki.js')).csrFor(d.keyPem)), { cert: d.certPem, key: d.keyPem });
    expect(sameKey.body.code).toBe('CERT_KEY_REUSED');

    const r = await provisioned();
    await t.call('POST', `/v1/certificates/${r.serial}/revoke`, { body: { reason: 'keyCompromise' } });
    expect((await renew(deviceKey().csrPem, { cert: r.certPem, key: r.keyPem })).body.code).toBe('CERT_RENEWAL_REFUSED');

    const id = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
    const k = deviceKey();
    const idevid = await t.call('POST', '/v1/certificates', { body: { deviceId: id, csr: k.csrPem, kind: 'idevid' } });
    expect((await renew(deviceKey().csrPem, { cert: idevid.body.chainPem, key: k.keyPem })).body.code).toBe('CERT_RENEWAL_REFUSED');

    const audit = await t.call('GET', '/v1/audit?action=certificate.renew&limit=100');
    expect(audit.body.entries.filter((e: { outcome: string }) => e.outcome === 'refused').length).toBeGreaterThanOrEqual(4);
  });

  test('rotation: a new issuing CA; certificates of the old one still renew during the overlap', async () => {
    const before = await provisioned();
    const rotated = await t.call('POST', '/v1/ca/rotate');
    expect(rotated.status).toBe(200);
    const ca = (await t.call('GET', '/v1/ca')).body;
    const issuing = ca.authorities.filter((a: { role: string }) => a.role === 'issuing');
    expect(issuing.map((a: { status: string }) => a.status).sort()).toEqual(['active', 'retiring']);
    const after = await provisioned();
    expect((await t.call('GET', `/v1/certificates/${after.serial}`)).body.issuerId).toBe(rotated.body.id);
    const bundle2 = ca.authorities.filter((a: { role: string }) => a.role !== 'manufacturing').map((a: { certificatePem: string }) => a.certificatePem).join('');
    const r1 = await mtlsPost(`${t.server.deviceUrl}/device/v1/renew`, { csr: deviceKey().csrPem }, { ca: bundle2, cert: before.certPem, key: before.keyPem });
    expect(r1.status).toBe(200);
    const r2 = await mtlsPost(`${t.server.deviceUrl}/device/v1/renew`, { csr: deviceKey().csrPem }, { ca: bundle2, cert: after.certPem, key: after.keyPem });
    expect(r2.status).toBe(200);
  });

  test('the root key exports under a passphrase, is removed, and rotation then needs it back', async () => {
    const short = await t.call('POST', '/v1/ca/root/export', { body: { passphrase: 'short' } });
    expect(short.body.code).toBe('VALIDATION_FAILED');
    const exp = await t.call('POST', '/v1/ca/root/export', { body: { passphrase: 'correct horse battery staple' } });
    expect(exp.status).toBe(200);
    expect(exp.body.armored).not.toContain('-----BEGIN PRIVATE KEY');
    expect(exp.body.armored).not.toContain('-----BEGIN EC PRIVATE KEY');
    const key = await importRootKey(exp.body.armored, 'correct horse battery staple');
    const rootPem = (await t.call('GET', '/v1/ca')).body.authorities.find((a: { role: string }) => a.role === 'root').certificatePem;
    const { X509Certificate } = await import('node:crypto');
    expect(createPublicKey(key).export({ type: 'spki', format: 'der' })).toEqual(new X509Certificate(rootPem).publicKey.export({ type: 'spki', format: 'der' }));
    expect((await t.call('POST', '/v1/ca/root/remove')).status).toBe(204);
    expect((await t.call('POST', '/v1/ca/rotate')).body.code).toBe('CA_ROOT_OFFLINE');
    expect((await t.call('POST', '/v1/ca/root/export', { body: { passphrase: 'correct horse battery staple' } })).body.code).toBe('CA_ROOT_NOT_EXPORTABLE');
    // Issuance goes on without the root.
    expect((await provisioned()).serial).toMatch(/^[0-9a-f]{32}$/);
  });
});
