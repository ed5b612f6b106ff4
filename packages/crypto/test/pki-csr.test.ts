import { createPublicKey, createPrivateKey, sign } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseAndVerifyCsr } from '../src/pki/index.js';
import { bitString, children, oid, readExactly, seq } from '../src/pki/der.js';
import { EC_K256, EC_P256, EC_P384, EC_P521, ED25519, opensslCsr, peculiarCsr, rsa, type OpensslCsr } from './support/pki-csr-fixtures.js';
import { codeOfSync } from './support/codes.js';

const pemToDer = (pem: string): Buffer => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');

/** Rebuilds a CertificationRequest from its parts, re-signing with `keyPem` when given. */
function rebuild(der: Buffer, mutate: { info?: Buffer; alg?: Buffer; sig?: Buffer }): Buffer {
  const [info, alg, sig] = children(readExactly(der, 0x30));
  return seq(mutate.info ?? info!.raw, mutate.alg ?? alg!.raw, mutate.sig ?? sig!.raw);
}

let p256: OpensslCsr;
let p384: OpensslCsr;
let ed: OpensslCsr;
let rsa2048: OpensslCsr;
let rsa1024: OpensslCsr;
let p521: OpensslCsr;
let k256: OpensslCsr;
let sha1: OpensslCsr;

beforeAll(async () => {
  [p256, p384, ed, rsa2048, rsa1024, p521, k256, sha1] = await Promise.all([
    opensslCsr(EC_P256),
    opensslCsr(EC_P384, ['-sha384']),
    opensslCsr(ED25519),
    opensslCsr(rsa(2048)),
    opensslCsr(rsa(1024)),
    opensslCsr(EC_P521),
    opensslCsr(EC_K256),
    opensslCsr(EC_P256, ['-sha1']),
  ]);
});

describe('parseAndVerifyCsr refusals', () => {
  it('fail-too-large: the size limit is checked before parsing', () => {
    expect(codeOfSync(() => parseAndVerifyCsr(p256.pem, { maxBytes: 100 }))).toBe('CSR_TOO_LARGE');
    expect(codeOfSync(() => parseAndVerifyCsr(Buffer.alloc(9000, 0x30)))).toBe('CSR_TOO_LARGE');
  });

  it('fail-malformed: garbage, truncation, trailing bytes, bad PEM, wrong PEM label, empty', () => {
    const der = pemToDer(p256.pem);
    expect(codeOfSync(() => parseAndVerifyCsr(Buffer.from('hello')))).toBe('CSR_MALFORMED');
    expect(codeOfSync(() => parseAndVerifyCsr(Buffer.alloc(0)))).toBe('CSR_MALFORMED');
    expect(codeOfSync(() => parseAndVerifyCsr(der.subarray(0, der.length - 1)))).toBe('CSR_MALFORMED');
    expect(codeOfSync(() => parseAndVerifyCsr(Buffer.concat([der, Buffer.from([0])])))).toBe('CSR_MALFORMED');
    expect(codeOfSync(() => parseAndVerifyCsr(p256.pem.replace('-----\n', '-----\n*')))).toBe('CSR_MALFORMED');
    expect(codeOfSync(() => parseAndVerifyCsr(p256.pem.replaceAll('CERTIFICATE REQUEST', 'CERTIFICATE')))).toBe('CSR_MALFORMED');
    expect(codeOfSync(() => parseAndVerifyCsr('not pem at all'))).toBe('CSR_MALFORMED');
    // Indefinite length (BER, not DER) on the outer SEQUENCE.
    const ber = Buffer.concat([Buffer.from([0x30, 0x80]), readExactly(der, 0x30).value, Buffer.from([0, 0])]);
    expect(codeOfSync(() => parseAndVerifyCsr(ber))).toBe('CSR_MALFORMED');
  });

  it('fail-malformed: version other than v1(0)', () => {
    const der = pemToDer(p256.pem);
    const [info] = children(readExactly(der, 0x30));
    const fields = children(info!);
    const badInfo = seq(Buffer.from([0x02, 0x01, 0x01]), ...fields.slice(1).map((f) => f.raw));
    expect(codeOfSync(() => parseAndVerifyCsr(rebuild(der, { info: badInfo })))).toBe('CSR_MALFORMED');
  });

  it('fail-signature-invalid: one flipped bit in the subject (tampered request)', () => {
    const der = Buffer.from(pemToDer(p256.pem));
    const at = der.indexOf(Buffer.from('device-from-openssl'));
    der[at] = der[at]! ^ 0x01;
    expect(codeOfSync(() => parseAndVerifyCsr(der))).toBe('CSR_SIGNATURE_INVALID');
  });

  it('fail-signature-invalid: valid signature by another key (no proof of possession)', async () => {
    const victim = pemToDer(p256.pem);
    const attacker = createPrivateKey(p384.keyPem);
    const [info] = children(readExactly(victim, 0x30));
    const forged = rebuild(victim, { sig: bitString(sign('sha256', info!.raw, attacker)) });
    expect(codeOfSync(() => parseAndVerifyCsr(forged))).toBe('CSR_SIGNATURE_INVALID');
  });

  it('fail-signature-invalid: signature algorithm of another key family', () => {
    const der = pemToDer(p256.pem);
    expect(codeOfSync(() => parseAndVerifyCsr(rebuild(der, { alg: seq(oid('1.3.101.112')) }), { allowEd25519: true }))).toBe('CSR_SIGNATURE_INVALID');
  });

  it('fail-signature-algorithm: SHA-1 and unknown algorithms are refused', () => {
    expect(codeOfSync(() => parseAndVerifyCsr(sha1.pem))).toBe('CSR_SIGNATURE_ALGORITHM_NOT_ALLOWED');
    const der = pemToDer(p256.pem);
    expect(codeOfSync(() => parseAndVerifyCsr(rebuild(der, { alg: seq(oid('1.2.3.4')) })))).toBe('CSR_SIGNATURE_ALGORITHM_NOT_ALLOWED');
  });

  it('fail-key-not-allowed: Ed25519 and RSA by default, P-521 and secp256k1 always', () => {
    expect(codeOfSync(() => parseAndVerifyCsr(ed.pem))).toBe('CSR_KEY_NOT_ALLOWED');
    expect(codeOfSync(() => parseAndVerifyCsr(rsa2048.pem))).toBe('CSR_KEY_NOT_ALLOWED');
    expect(codeOfSync(() => parseAndVerifyCsr(p521.pem, { allowEd25519: true, allowRsa: true }))).toBe('CSR_KEY_NOT_ALLOWED');
    expect(codeOfSync(() => parseAndVerifyCsr(k256.pem, { allowEd25519: true, allowRsa: true }))).toBe('CSR_KEY_NOT_ALLOWED');
  });

  it('fail-key-too-short: RSA-1024 even when RSA is allowed; policy cannot go below 2048', () => {
    expect(codeOfSync(() => parseAndVerifyCsr(rsa1024.pem, { allowRsa: true }))).toBe('CSR_KEY_TOO_SHORT');
    expect(codeOfSync(() => parseAndVerifyCsr(rsa1024.pem, { allowRsa: true, minRsaBits: 512 }))).toBe('CSR_KEY_TOO_SHORT');
    expect(codeOfSync(() => parseAndVerifyCsr(rsa2048.pem, { allowRsa: true, minRsaBits: 3072 }))).toBe('CSR_KEY_TOO_SHORT');
  });

  it('property: any single-byte change of a valid CSR is refused with a CSR_ code, never accepted or crashing', () => {
    const der = pemToDer(p256.pem);
    fc.assert(
      fc.property(fc.nat({ max: der.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const copy = Buffer.from(der);
        copy[at] = copy[at]! ^ xor;
        expect(codeOfSync(() => parseAndVerifyCsr(copy))).toMatch(/^CSR_(MALFORMED|SIGNATURE_INVALID|SIGNATURE_ALGORITHM_NOT_ALLOWED|KEY_NOT_ALLOWED)$/);
      }),
      { numRuns: 300 },
    );
  });
});

describe('parseAndVerifyCsr acceptance', () => {
  it('accepts an openssl P-256 CSR (PEM and DER) and returns the key as sent', () => {
    const key = createPublicKey(createPrivateKey(p256.keyPem)).export({ type: 'spki', format: 'der' });
    for (const input of [p256.pem, Buffer.from(p256.pem), pemToDer(p256.pem)]) {
      const csr = parseAndVerifyCsr(input);
      expect(csr.keyType).toBe('p256');
      expect(csr.spkiDer.equals(key)).toBe(true);
      expect(csr.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
      expect(csr.subject).toBe('CN=device-from-openssl, O=Acme');
      expect(csr.signatureAlgorithm).toBe('1.2.840.10045.4.3.2');
    }
  });

  it('accepts an openssl P-384 CSR signed with SHA-384', () => {
    const csr = parseAndVerifyCsr(p384.pem);
    expect(csr.keyType).toBe('p384');
    expect(csr.signatureAlgorithm).toBe('1.2.840.10045.4.3.3');
  });

  it('accepts Ed25519 and RSA-2048 only when the policy allows them', () => {
    expect(parseAndVerifyCsr(ed.pem, { allowEd25519: true }).keyType).toBe('ed25519');
    expect(parseAndVerifyCsr(rsa2048.pem, { allowRsa: true }).keyType).toBe('rsa');
  });

  it('accepts CSRs made by @peculiar/x509 over WebCrypto (P-256 and P-384)', async () => {
    for (const curve of ['P-256', 'P-384'] as const) {
      const { der, spki } = await peculiarCsr(curve);
      const csr = parseAndVerifyCsr(der);
      expect(csr.keyType).toBe(curve === 'P-256' ? 'p256' : 'p384');
      expect(csr.spkiDer.equals(spki)).toBe(true);
    }
  });
});
