import { beforeAll, describe, expect, it } from 'vitest';
import { buildCrl, issueDeviceCertificate, toPem, type BuildCrlOptions, type CrlEntry } from '../src/pki/index.js';
import { deviceRequest, makeTestPki, type TestPki } from './support/pki-fixtures.js';
import { certPem, openssl, opensslVerify, tempDir } from './support/pki-openssl.js';
import { codeOf } from './support/codes.js';

const HOUR = 3_600_000;

let pki: TestPki;
let base: Omit<BuildCrlOptions, 'entries'>;
beforeAll(async () => {
  pki = await makeTestPki();
  base = { issuerCertificate: pki.intermediateDer, signer: pki.intermediateSigner, thisUpdate: new Date(Date.now() - 60_000), nextUpdate: new Date(Date.now() + HOUR), crlNumber: 7n };
});

/** `openssl crl -verify` with the issuer chain, plus the text form. */
async function opensslCrl(crl: Buffer, p: TestPki): Promise<{ ok: boolean; text: string }> {
  const t = await tempDir();
  try {
    const r = await openssl(['crl', '-inform', 'DER', '-in', await t.file('c.crl', crl), '-verify', '-CAfile', await t.file('ca.pem', certPem(p.intermediateDer) + certPem(p.rootDer)), '-noout', '-text']);
    return { ok: r.ok && /verify OK/.test(r.stderr + r.stdout), text: r.stdout };
  } finally {
    await t.dispose();
  }
}

describe('buildCrl refusals', () => {
  it('fail-params: bad serial, duplicate serial, reversed dates, crlNumber out of range, removeFromCRL in a full CRL', async () => {
    const at = new Date();
    const cases: Array<Partial<BuildCrlOptions>> = [
      { entries: [{ serialHex: 'xyz', revokedAt: at }] },
      { entries: [{ serialHex: '', revokedAt: at }] },
      { entries: [{ serialHex: '01'.repeat(21), revokedAt: at }] },
      { entries: [{ serialHex: '0a0b', revokedAt: at }, { serialHex: '0A0B', revokedAt: at }] },
      { entries: [{ serialHex: '0a0b', revokedAt: new Date(NaN) }] },
      { entries: [{ serialHex: '0a0b', revokedAt: at, reason: 'removeFromCRL' }] },
      { entries: [{ serialHex: '0a0b', revokedAt: at, reason: 'bogus' as never }] },
      { entries: [], nextUpdate: base.thisUpdate },
      { entries: [], crlNumber: -1n },
      { entries: [], crlNumber: 1n << 160n },
    ];
    for (const c of cases) expect(await codeOf(buildCrl({ ...base, ...c } as BuildCrlOptions))).toBe('CRL_PARAMS_INVALID');
  });

  it('fail-issuer: a signer that is not the issuer', async () => {
    expect(await codeOf(buildCrl({ ...base, signer: pki.rootSigner, entries: [] }))).toBe('CERT_ISSUER_INVALID');
  });
});

describe('buildCrl', () => {
  it('openssl verifies the CRL and reads number, AKI and reason codes', async () => {
    const entries: CrlEntry[] = [
      { serialHex: '4a11', revokedAt: new Date('2026-01-02T03:04:05.678Z'), reason: 'keyCompromise' },
      { serialHex: 'ff00', revokedAt: new Date('2026-01-02T03:04:05Z'), reason: 'superseded' },
      { serialHex: '0102', revokedAt: new Date('2026-01-02T03:04:05Z'), reason: 'unspecified' },
      { serialHex: '0103', revokedAt: new Date('2026-01-02T03:04:05Z') },
      { serialHex: '0104', revokedAt: new Date('2026-01-02T03:04:05Z'), reason: 'cessationOfOperation' },
      { serialHex: '0105', revokedAt: new Date('2026-01-02T03:04:05Z'), reason: 'certificateHold' },
    ];
    const crl = await buildCrl({ ...base, entries });
    const { ok, text } = await opensslCrl(crl, pki);
    expect(ok).toBe(true);
    expect(text).toMatch(/X509v3 CRL Number: \n\s+7/);
    expect(text).toContain('X509v3 Authority Key Identifier');
    expect(text).toMatch(/Serial Number: 4A11\s+Revocation Date: Jan {2}2 03:04:05 2026 GMT\s+CRL entry extensions:\s+X509v3 CRL Reason Code: \n\s+Key Compromise/);
    expect(text).toMatch(/Serial Number: FF00\s+Revocation Date: [^\n]+\n\s+CRL entry extensions:\s+X509v3 CRL Reason Code: \n\s+Superseded/);
    // "unspecified" and no reason: reasonCode left out (RFC 5280 §5.3.1).
    expect(text).toMatch(/Serial Number: 0102\s+Revocation Date: [^\n]+\n\s+Serial Number: 0103\s+Revocation Date: [^\n]+\n\s+Serial Number: 0104/);
    expect(text).toContain('Certificate Hold');
  });

  it('a CRL signed by another key fails openssl verification (the check can fail)', async () => {
    const other = await makeTestPki();
    const crl = await buildCrl({ ...base, issuerCertificate: other.intermediateDer, signer: other.intermediateSigner, entries: [] });
    expect((await opensslCrl(crl, pki)).ok).toBe(false);
    expect((await opensslCrl(crl, other)).ok).toBe(true);
  });

  it('openssl verify -crl_check: the revoked certificate is rejected, the good one accepted', async () => {
    const revoked = await issueDeviceCertificate(pki.template, deviceRequest());
    const good = await issueDeviceCertificate(pki.template, deviceRequest());
    const crl = await buildCrl({ ...base, entries: [{ serialHex: revoked.serialHex, revokedAt: new Date(), reason: 'keyCompromise' }] });
    const t = await tempDir();
    try {
      const crlFile = await t.file('c.pem', toPem(crl, 'X509 CRL'));
      const extra = ['-crl_check', '-CRLfile', crlFile];
      const bad = await opensslVerify(revoked.der, pki.rootDer, [pki.intermediateDer], extra);
      expect(bad.ok).toBe(false);
      expect(bad.stdout + bad.stderr).toContain('certificate revoked');
      const ok = await opensslVerify(good.der, pki.rootDer, [pki.intermediateDer], extra);
      expect(ok.stdout).toContain(': OK');
    } finally {
      await t.dispose();
    }
  });

  it('a P-384 issuer signs its CRL with ecdsa-with-SHA384 and openssl verifies it', async () => {
    const p384 = await makeTestPki('P-384', 'P-384');
    const crl = await buildCrl({ ...base, issuerCertificate: p384.intermediateDer, signer: p384.intermediateSigner, entries: [{ serialHex: '01', revokedAt: new Date() }] });
    const { ok, text } = await opensslCrl(crl, p384);
    expect(ok).toBe(true);
    expect(text).toContain('Signature Algorithm: ecdsa-with-SHA384');
  });

  it('an empty CRL omits revokedCertificates and verifies', async () => {
    const crl = await buildCrl({ ...base, entries: [] });
    const { ok, text } = await opensslCrl(crl, pki);
    expect(ok).toBe(true);
    expect(text).toContain('No Revoked Certificates');
  });

  it('100,000 entries build in well under two seconds and verify in openssl', async () => {
    const entries: CrlEntry[] = Array.from({ length: 100_000 }, (_, i) => ({
      serialHex: (0x4000000000000000n + BigInt(i) * 7919n).toString(16).padStart(32, '0'),
      revokedAt: new Date(Date.UTC(2026, 0, 1) + i * 1000),
      reason: i % 3 === 0 ? 'keyCompromise' : 'superseded',
    }));
    const started = performance.now();
    const crl = await buildCrl({ ...base, entries, crlNumber: 123456789012345678901234567890n });
    const ms = performance.now() - started;
    expect(ms).toBeLessThan(2000);
    const t = await tempDir();
    try {
      const file = await t.file('big.crl', crl);
      const r = await openssl(['crl', '-inform', 'DER', '-in', file, '-verify', '-CAfile', await t.file('ca.pem', certPem(pki.intermediateDer)), '-noout', '-crlnumber']);
      expect(r.stderr + r.stdout).toContain('verify OK');
      expect(BigInt(r.stdout.trim().replace('crlNumber=', ''))).toBe(123456789012345678901234567890n);
    } finally {
      await t.dispose();
    }
  });
});
