import { createPublicKey, X509Certificate } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { csrFor, deviceKey, openssl, rsaCsr } from '../support/pki.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

// The provenance extension (1.3.6.1.4.1.6712185.1, unregistered PEN-style arc; every arc < 2^28 for pyca and Go).
const METHOD_OID = '1.3.6.1.4.1.6712185.1';

describe.each(DIALECTS)('certificate issuance on %s', (dialect) => {
  let t: TestServer;
  let ca: { authorities: { role: string; id: string; certificatePem: string; status: string }[]; ocspUrl: string };
  const pem = (role: string) => ca.authorities.find((a) => a.role === role && a.status === 'active')!.certificatePem;
  const newDevice = async () => (await t.call('POST', '/v1/devices', { body: {} })).body.id as string;
  const certCount = async () => (await t.server.store.db.selectFrom('certificates').select('serial').execute()).length;
  beforeAll(async () => {
    t = await startTestServer(dialect);
    ca = (await t.call('GET', '/v1/ca')).body;
  });
  afterAll(async () => t?.stop());

  test('init created a root, an issuing and a manufacturing CA, keys encrypted at rest with mode 0600', async () => {
    expect(ca.authorities.map((a) => a.role).sort()).toEqual(['issuing', 'manufacturing', 'root']);
    const rows = await t.server.store.db.selectFrom('ca_authorities').select(['key_ref', 'keystore']).execute();
    for (const r of rows) {
      expect(r.keystore).toBe('file');
      const file = join(t.dataDir, 'ca', r.key_ref!);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      // Encrypted: the file is not a PEM or DER private key a parser could read as such.
      expect((await openssl((d) => ['pkey', '-in', file, '-noout'])).ok).toBe(false);
    }
    const root = new X509Certificate(pem('root'));
    expect(new X509Certificate(pem('issuing')).checkIssued(root)).toBe(true);
    expect(root.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });

  test('an operator issues from a CSR: our profile, chained, recorded, audited, accepted by openssl', async () => {
    const id = await newDevice();
    const k = deviceKey('prime256v1', 'whatever-the-device-asks');
    const r = await t.call('POST', '/v1/certificates', { body: { deviceId: id, csr: k.csrPem, validity: '24h' } });
    expect(r.status).toBe(201);
    const cert = new X509Certificate(r.body.certificate.certificatePem);
    expect(cert.subject).toBe(`CN=${id}`);
    expect(cert.subjectAltName).toBe(`URI:urn:uuid:${id}`);
    expect(cert.publicKey.export({ type: 'spki', format: 'der' })).toEqual(createPublicKey(k.key).export({ type: 'spki', format: 'der' }));
    const life = Date.parse(cert.validTo) - Date.parse(cert.validFrom);
    expect(life).toBe(24 * 3_600_000 + 5 * 60_000); // 24 h plus the 5-minute backdate
    expect(BigInt(`0x${cert.serialNumber}`) >= 2n ** 63n).toBe(true);
    const text = (await openssl((d) => ['x509', '-in', join(d, 'c.pem'), '-noout', '-text'], { 'c.pem': r.body.certificate.certificatePem })).out;
    expect(text).toContain('TLS Web Client Authentication');
    expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature/);
    expect(text).toContain(METHOD_OID);
    expect(text).toContain('/pki/crl/');
    expect(text).toContain('OCSP - URI:');
    const verify = await openssl((d) => ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(d, 'root.pem'), '-untrusted', join(d, 'int.pem'), join(d, 'c.pem')], {
      'root.pem': pem('root'),
      'int.pem': pem('issuing'),
      'c.pem': r.body.certificate.certificatePem,
    });
    expect(verify.out).toContain('OK');
    expect(r.body.chainPem).toContain(pem('issuing').trim());
    const audit = await t.call('GET', `/v1/audit?subject=device:${id}`);
    expect(audit.body.entries.map((e: { action: string }) => e.action)).toContain('certificate.issue');
    const shown = await t.call('GET', `/v1/certificates/${r.body.certificate.serial}`);
    expect(shown.body).toMatchObject({ deviceId: id, kind: 'operational', method: 'operator', status: 'valid' });
  });

  test('P-384 device keys are accepted', async () => {
    const r = await t.call('POST', '/v1/certificates', { body: { deviceId: await newDevice(), csr: deviceKey('secp384r1').csrPem } });
    expect(r.status).toBe(201);
  });

  describe('refusals issue nothing and are audited', () => {
    const tampered = (csrPem: string) => {
      const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
      der[der.length - 10]! ^= 0x01; // inside the signature
      return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    };
    const cases: [string, () => Promise<{ deviceId: string; csr: string; validity?: string }>, string][] = [
      ['garbage CSR', async () => ({ deviceId: await newDevice(), csr: `-----BEGIN CERTIFICATE REQUEST-----\n${'A'.repeat(100)}\n-----END CERTIFICATE REQUEST-----` }), 'CSR_MALFORMED'],
      ['signature does not verify', async () => ({ deviceId: await newDevice(), csr: tampered(deviceKey().csrPem) }), 'CSR_SIGNATURE_INVALID'],
      ['short RSA key', async () => ({ deviceId: await newDevice(), csr: rsaCsr(1024) }), 'CSR_KEY_NOT_ALLOWED'],
      ['RSA is not on by default', async () => ({ deviceId: await newDevice(), csr: rsaCsr(2048) }), 'CSR_KEY_NOT_ALLOWED'],
      ['disallowed curve', async () => ({ deviceId: await newDevice(), csr: csrFor(deviceKey().keyPem.replace(/.*/s, (await import('node:crypto')).generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string)) }), 'CSR_KEY_NOT_ALLOWED'],
      ['unknown device', async () => ({ deviceId: '6f1c1f6e-8d1c-4b7e-9b1a-2f3e4d5c6b7a', csr: deviceKey().csrPem }), 'DEVICE_NOT_FOUND'],
      ['validity under an hour', async () => ({ deviceId: await newDevice(), csr: deviceKey().csrPem, validity: '30m' }), 'CERT_VALIDITY_INVALID'],
    ];
    test.each(cases)('fail: %s', async (_label, make, code) => {
      const before = await certCount();
      const body = await make();
      const r = await t.call('POST', '/v1/certificates', { body });
      expect(r.body.code).toBe(code);
      expect(await certCount()).toBe(before);
      const audit = await t.call('GET', `/v1/audit?action=certificate.issue&limit=1000`);
      expect(audit.body.entries.at(-1)).toMatchObject({ outcome: 'refused', code });
    });

    test('fail: a revoked or suspended device gets no certificate', async () => {
      for (const action of ['revoke', 'suspend']) {
        const id = await newDevice();
        await t.call('POST', `/v1/devices/${id}/${action}`, { body: {} });
        const r = await t.call('POST', '/v1/certificates', { body: { deviceId: id, csr: deviceKey().csrPem } });
        expect(r.body.code).toBe('CERT_DEVICE_NOT_ELIGIBLE');
      }
    });

    test('fail: a key that is already certified is refused', async () => {
      const k = deviceKey();
      expect((await t.call('POST', '/v1/certificates', { body: { deviceId: await newDevice(), csr: k.csrPem } })).status).toBe(201);
      const again = await t.call('POST', '/v1/certificates', { body: { deviceId: await newDevice(), csr: k.csrPem } });
      expect(again.body.code).toBe('CERT_KEY_REUSED');
    });

    test('fail: a viewer cannot issue; an oversized CSR is refused by the schema', async () => {
      const viewer = (await t.call('POST', '/v1/tokens', { body: { role: 'viewer' } })).body.secret;
      const r = await t.call('POST', '/v1/certificates', { token: viewer, body: { deviceId: await newDevice(), csr: deviceKey().csrPem } });
      expect(r.body.code).toBe('FORBIDDEN');
      const big = await t.call('POST', '/v1/certificates', { body: { deviceId: await newDevice(), csr: 'A'.repeat(20_000) } });
      expect(big.body.code).toBe('VALIDATION_FAILED');
    });
  });
});
