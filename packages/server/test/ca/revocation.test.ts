import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { deviceKey, openssl } from '../support/pki.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

describe.each(DIALECTS)('revocation, CRL and OCSP on %s', (dialect) => {
  let t: TestServer;
  let rootPem: string;
  let issuingPem: string;
  let issuingId: string;
  const issue = async () => {
    const id = (await t.call('POST', '/v1/devices', { body: {} })).body.id as string;
    const r = await t.call('POST', '/v1/certificates', { body: { deviceId: id, csr: deviceKey().csrPem } });
    return { deviceId: id, serial: r.body.certificate.serial as string, pem: r.body.certificate.certificatePem as string };
  };
  const crl = async () => Buffer.from(await (await fetch(`${t.url}/pki/crl/${issuingId}.crl`)).arrayBuffer());
  const ocsp = (certPem: string) =>
    openssl((d) => ['ocsp', '-issuer', join(d, 'int.pem'), '-cert', join(d, 'c.pem'), '-url', `${t.url}/pki/ocsp`, '-CAfile', join(d, 'chain.pem'), '-resp_text'], {
      'int.pem': issuingPem,
      'c.pem': certPem,
      'chain.pem': rootPem + issuingPem,
    });
  beforeAll(async () => {
    t = await startTestServer(dialect);
    const ca = (await t.call('GET', '/v1/ca')).body;
    rootPem = ca.authorities.find((a: { role: string }) => a.role === 'root').certificatePem;
    const issuing = ca.authorities.find((a: { role: string }) => a.role === 'issuing');
    issuingPem = issuing.certificatePem;
    issuingId = issuing.id;
  });
  afterAll(async () => t?.stop());

  test('a revoked serial is on the next CRL, which openssl verifies; CRL numbers increase', async () => {
    const good = await issue();
    const bad = await issue();
    const before = await crl();
    const numberOf = async (der: Buffer) => /X509v3 CRL Number:\s*\n\s*(\d+)/.exec((await openssl((d) => ['crl', '-inform', 'DER', '-in', join(d, 'c.crl'), '-noout', '-text'], { 'c.crl': der })).out)?.[1];
    const n0 = Number(await numberOf(before));
    const r = await t.call('POST', `/v1/certificates/${bad.serial}/revoke`, { body: { reason: 'keyCompromise' } });
    expect(r.body).toMatchObject({ status: 'revoked', revocationReason: 'keyCompromise' });
    const after = await crl();
    expect(Number(await numberOf(after))).toBeGreaterThan(n0);
    const files = { 'c.crl': after, 'root.pem': rootPem, 'int.pem': issuingPem, 'chain.pem': rootPem + issuingPem, 'good.pem': good.pem, 'bad.pem': bad.pem };
    const text = (await openssl((d) => ['crl', '-inform', 'DER', '-in', join(d, 'c.crl'), '-CAfile', join(d, 'chain.pem'), '-noout', '-text'], files)).out;
    expect(text).toContain('verify OK');
    expect(text).toContain(bad.serial.toUpperCase());
    expect(text).toContain('Key Compromise');
    expect(text).toContain('Next Update');
    const crlPem = await (await fetch(`${t.url}/pki/crl/${issuingId}.pem`)).text();
    const check = (cert: string) =>
      openssl((d) => ['verify', '-crl_check', '-CAfile', join(d, 'root.pem'), '-untrusted', join(d, 'int.pem'), '-CRLfile', join(d, 'crl.pem'), join(d, cert)], { ...files, 'crl.pem': crlPem });
    expect((await check('good.pem')).out).toContain('OK');
    const revoked = await check('bad.pem');
    expect(revoked.ok).toBe(false);
    expect(revoked.out).toContain('certificate revoked');
    expect(t.server.ca.revocations.status(bad.serial, Date.now())).toBe('revoked');
    expect(t.server.ca.revocations.status(good.serial, Date.now())).toBe('good');
  });

  test('OCSP (openssl ocsp as the client, nonce checked): good, then revoked', async () => {
    const c = await issue();
    const first = await ocsp(c.pem);
    expect(first.out).toContain('Response verify OK');
    expect(first.out).toContain(': good');
    await t.call('POST', `/v1/certificates/${c.serial}/revoke`, { body: { reason: 'cessationOfOperation' } });
    const second = await ocsp(c.pem);
    expect(second.out).toContain('Response verify OK');
    expect(second.out).toMatch(/: revoked/);
    expect(second.out).toContain('Revocation Reason: cessationOfOperation');
    // openssl sends a nonce by default and warns when the answer does not echo it.
    expect(second.out).toContain('OCSP Nonce');
    expect(second.out.toLowerCase()).not.toContain('no nonce');
  });

  test('fail: OCSP answers malformedRequest to garbage and unauthorized for a foreign issuer', async () => {
    const res = await fetch(`${t.url}/pki/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: Buffer.from('not der') });
    const der = Buffer.from(await res.arrayBuffer());
    expect((await openssl((d) => ['ocsp', '-respin', join(d, 'r.der'), '-resp_text', '-noverify'], { 'r.der': der })).out).toContain('malformedrequest');
    // A certificate from the manufacturing CA asked of the issuing CA's responder: not ours to answer.
    const foreign = await openssl((d) => ['ocsp', '-issuer', join(d, 'root.pem'), '-cert', join(d, 'int.pem'), '-url', `${t.url}/pki/ocsp`, '-noverify', '-resp_text'], { 'root.pem': rootPem, 'int.pem': issuingPem });
    expect(foreign.out.toLowerCase()).toContain('unauthorized');
    expect((await fetch(`${t.url}/pki/crl/not-a-uuid.crl`)).status).toBe(404);
  });

  test('revoking a device revokes all its certificates in the same transaction', async () => {
    const a = await issue();
    const k2 = deviceKey();
    const second = await t.call('POST', '/v1/certificates', { body: { deviceId: a.deviceId, csr: k2.csrPem } });
    await t.call('POST', `/v1/devices/${a.deviceId}/revoke`, { body: { reason: 'stolen' } });
    const list = await t.call('GET', `/v1/certificates?deviceId=${a.deviceId}`);
    expect(list.body.certificates.map((c: { status: string }) => c.status)).toEqual(['revoked', 'revoked']);
    expect(t.server.ca.revocations.status(second.body.certificate.serial, Date.now())).toBe('revoked');
    const audit = await t.call('GET', `/v1/audit?subject=device:${a.deviceId}&action=device.revoke`);
    expect(audit.body.entries).toHaveLength(1);
  });

  test('fail: revoking an unknown or already revoked serial', async () => {
    expect((await t.call('POST', '/v1/certificates/abcdef/revoke', { body: { reason: 'keyCompromise' } })).body.code).toBe('CERT_NOT_FOUND');
    const c = await issue();
    await t.call('POST', `/v1/certificates/${c.serial}/revoke`, { body: { reason: 'superseded' } });
    expect((await t.call('POST', `/v1/certificates/${c.serial}/revoke`, { body: { reason: 'superseded' } })).body.code).toBe('CERT_ALREADY_REVOKED');
    expect((await t.call('POST', `/v1/certificates/${c.serial}/revoke`, { body: { reason: 'removeFromCRL' } })).body.code).toBe('VALIDATION_FAILED');
  });
});

describe('OCSP over GET (RFC 6960 Appendix A.1)', () => {
  test('a base64 request in the path gets a signed answer with the same status as POST', async () => {
    const t = await startTestServer('sqlite');
    try {
      const id = (await t.call('POST', '/v1/devices', { body: {} })).body.id as string;
      const cert = (await t.call('POST', '/v1/certificates', { body: { deviceId: id, csr: deviceKey().csrPem } })).body.certificate;
      const ca = (await t.call('GET', '/v1/ca')).body;
      const issuing = ca.authorities.find((a: { role: string }) => a.role === 'issuing').certificatePem as string;
      const root = ca.authorities.find((a: { role: string }) => a.role === 'root').certificatePem as string;
      // openssl writes the request DER; we send it by GET ourselves (openssl 3.0 has no GET mode).
      const { mkdtempSync, readFileSync, rmSync, writeFileSync } = await import('node:fs');
      const { tmpdir } = await import('node:os');
      const dir = mkdtempSync(join(tmpdir(), 'ocsp-get-'));
      try {
        writeFileSync(join(dir, 'i.pem'), issuing);
        writeFileSync(join(dir, 'c.pem'), cert.certificatePem);
        const { execFileSync } = await import('node:child_process');
        execFileSync('openssl', ['ocsp', '-issuer', join(dir, 'i.pem'), '-cert', join(dir, 'c.pem'), '-no_nonce', '-reqout', join(dir, 'req.der')]);
        const b64 = encodeURIComponent(readFileSync(join(dir, 'req.der')).toString('base64'));
        const res = await fetch(`${t.url}/pki/ocsp/${b64}`);
        expect(res.headers.get('content-type')).toBe('application/ocsp-response');
        const answer = Buffer.from(await res.arrayBuffer());
        const text = await openssl((d) => ['ocsp', '-respin', join(d, 'r.der'), '-issuer', join(d, 'i.pem'), '-CAfile', join(d, 'chain.pem'), '-resp_text'], { 'r.der': answer, 'i.pem': issuing, 'chain.pem': root + issuing });
        expect(text.out).toContain('Response verify OK');
        expect(text.out).toContain('Cert Status: good');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    } finally {
      await t.stop();
    }
  });
});
