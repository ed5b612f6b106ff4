/**
 * EK certificates go through the one path validator under the TCG EK profile (TCG EK Credential
 * Profile for TPM 2.0 §3.2): the chain checks every other certificate gets (signatures, pathLen,
 * name constraints, unknown critical extensions, weak keys, SHA-1) plus the EK's own profile.
 * Certificates are minted in-test for the real EK public areas captured from swtpm
 * (support/tpm-fixtures.ts), so no TPM is needed; tpm-swtpm.test.ts covers real TPM output.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto, X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import { oid, seq, set, tlv, utf8String } from '../src/pki/der.js';
import { parseTpm2bPublic, tpmPublicToKeyObject, validateEkChain, verifyEkCertificate } from '../src/tpm/index.js';
import { codeOfSync } from './support/codes.js';
import { EK_P256, EK_RSA } from './support/tpm-fixtures.js';
import { check, expectAccepted, expectRefused, make, NOW, rawExtension, type CryptoKeyPair, type Made } from './support/x509-fixtures.js';

const TCG_KP_EK_CERTIFICATE = '2.23.133.8.1';
const KU = x509.KeyUsageFlags;

/** TCG EK Credential Profile §3.2.9: SAN directoryName with TPM manufacturer, model and version. */
function tpmSan(manufacturer = 'id:414D4400', attrs = ['2.23.133.2.1', '2.23.133.2.2', '2.23.133.2.3']): Buffer {
  const values: Record<string, string> = { '2.23.133.2.1': manufacturer, '2.23.133.2.2': 'fleet-tpm', '2.23.133.2.3': 'id:00010002' };
  return seq(tlv(0xa4, seq(...attrs.map((a) => set(seq(oid(a), utf8String(values[a] ?? 'x')))))));
}

async function importEk(tpm2bPublic: Buffer): Promise<webcrypto.CryptoKey> {
  const spki = tpmPublicToKeyObject(parseTpm2bPublic(tpm2bPublic)).export({ type: 'spki', format: 'der' });
  const alg = tpm2bPublic === EK_RSA ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } : { name: 'ECDSA', namedCurve: 'P-256' };
  return webcrypto.subtle.importKey('spki', spki, alg, true, ['verify']);
}

interface EkOptions {
  issuer: Made;
  ek?: 'rsa' | 'p256';
  san?: Buffer | null;
  keyUsage?: x509.KeyUsageFlags;
  eku?: string[];
  ca?: boolean;
  subject?: string;
  signingAlgorithm?: Parameters<typeof make>[0]['signingAlgorithm'];
}

let ekRsaKey: webcrypto.CryptoKey;
let ekP256Key: webcrypto.CryptoKey;

/** An EK certificate in the TCG layout: empty subject, critical TPM SAN, EK key usage and EKU. */
function ekCert(o: EkOptions): Promise<Made> {
  const rsa = (o.ek ?? 'rsa') === 'rsa';
  return make({
    name: 'ek',
    subject: o.subject ?? '',
    issuer: o.issuer,
    publicKey: rsa ? ekRsaKey : ekP256Key,
    ca: o.ca ?? false,
    keyUsage: o.keyUsage ?? (rsa ? KU.keyEncipherment : KU.keyAgreement),
    eku: o.eku ?? [TCG_KP_EK_CERTIFICATE],
    extra: o.san === null ? [] : [rawExtension('2.5.29.17', true, o.san ?? tpmSan())],
    ...(o.signingAlgorithm ? { signingAlgorithm: o.signingAlgorithm } : {}),
  });
}

const x = (m: Made): X509Certificate => new X509Certificate(m.der);

let root: Made;
let issuing: Made;
let ekRsa: Made;
let ekP256: Made;

beforeAll(async () => {
  ekRsaKey = await importEk(EK_RSA);
  ekP256Key = await importEk(EK_P256);
  root = await make({ name: 'TPM Maker Root', ca: true });
  issuing = await make({ name: 'TPM Maker EK CA', ca: true, issuer: root });
  ekRsa = await ekCert({ issuer: issuing });
  ekP256 = await ekCert({ issuer: issuing, ek: 'p256' });
});

const verify = (ek: Made, intermediates: Made[], roots: Made[] = [root], ekPublic: Buffer = EK_RSA) =>
  codeOfSync(() => verifyEkCertificate({ ekCertDer: ek.der, ekPublic, roots: roots.map(x), intermediates: intermediates.map(x), time: NOW }));

/** verifyEkCertificate refuses with TPM_EK_UNTRUSTED, and the validator says why. */
function expectUntrusted(ek: Made, intermediates: Made[], reason: string, roots: Made[] = [root], ekPublic: Buffer = EK_RSA): void {
  expect(verify(ek, intermediates, roots, ekPublic)).toBe('TPM_EK_UNTRUSTED');
  expectRefused(validateEkChain({ ekCertDer: ek.der, roots: roots.map(x), intermediates: intermediates.map(x), time: NOW }), reason);
}

describe('EK certificates through the path validator: chain-level refusals', () => {
  test('fail: a manufacturer intermediate with an unknown critical extension cannot vouch for an EK', async () => {
    const odd = await make({ name: 'TPM Maker EK CA', ca: true, issuer: root, keys: issuing.keys, extra: [rawExtension('1.3.6.1.4.1.55738.666.1', true, Buffer.from([5, 0]))] });
    expectUntrusted(ekRsa, [odd], 'unknown_critical_extension');
  });

  test('fail: an EK certificate signed with SHA-1 is refused', async () => {
    const rsa = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-1' };
    const keys = (await webcrypto.subtle.generateKey(rsa, true, ['sign', 'verify'])) as CryptoKeyPair;
    const rsaRoot = await make({ name: 'Old TPM Root', ca: true, keys, signingAlgorithm: { ...rsa, hash: 'SHA-256' } });
    const sha1Ek = await ekCert({ issuer: rsaRoot, signingAlgorithm: rsa });
    expectUntrusted(sha1Ek, [], 'unsupported_algorithm', [rsaRoot]);
  });

  test('fail: an intermediate below a pathLen 0 CA cannot issue EK certificates', async () => {
    const capped = await make({ name: 'TPM Maker EK CA', ca: true, issuer: root, keys: issuing.keys, pathLen: 0 });
    const sub = await make({ name: 'Rogue Sub CA', ca: true, issuer: { ...capped, name: 'TPM Maker EK CA' } });
    const ek = await ekCert({ issuer: sub });
    expectUntrusted(ek, [capped, sub], 'path_len_exceeded');
  });

  test('fail: a CA constrained to one TPM manufacturer cannot certify an EK claiming another', async () => {
    // nameConstraints permitting only directoryNames under manufacturer id:414D4400 (§4.2.1.10).
    const permitted = seq(tlv(0xa0, seq(tlv(0xa4, seq(set(seq(oid('2.23.133.2.1'), utf8String('id:414D4400'))))))));
    const constrained = await make({ name: 'TPM Maker EK CA', ca: true, issuer: root, keys: issuing.keys, extra: [rawExtension('2.5.29.30', true, permitted)] });
    const own = await ekCert({ issuer: constrained });
    const foreign = await ekCert({ issuer: constrained, san: tpmSan('id:49465800') });
    expect(verify(own, [constrained])).toBe('ACCEPTED');
    expectUntrusted(foreign, [constrained], 'name_constraints');
  });

  test('fail: a manufacturer CA whose nameConstraints are not critical is refused, as RFC 5280 §4.2.1.10 requires', async () => {
    const permitted = seq(tlv(0xa0, seq(tlv(0xa4, seq(set(seq(oid('2.23.133.2.1'), utf8String('id:414D4400'))))))));
    const lax = await make({ name: 'TPM Maker EK CA', ca: true, issuer: root, keys: issuing.keys, extra: [rawExtension('2.5.29.30', false, permitted)] });
    expectUntrusted(await ekCert({ issuer: lax }), [lax], 'bad_extension');
  });

  test('fail: a manufacturer CA with an RSA-1024 key is refused', async () => {
    const rsa = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
    const keys = (await webcrypto.subtle.generateKey(rsa, true, ['sign', 'verify'])) as CryptoKeyPair;
    const weak = await make({ name: 'Weak EK CA', ca: true, issuer: root, keys });
    const ek = await ekCert({ issuer: weak, signingAlgorithm: rsa });
    expectUntrusted(ek, [weak], 'weak_key');
  });

  test('fail: an expired manufacturer intermediate is refused', async () => {
    const old = await make({ name: 'TPM Maker EK CA', ca: true, issuer: root, keys: issuing.keys, notBefore: new Date(0), notAfter: new Date(NOW.getTime() - 1000) });
    expectUntrusted(ekRsa, [old], 'expired');
  });
});

describe('EK certificates: the TCG EK profile', () => {
  test('fail: an EK certificate without the TPM subjectAltName is refused', async () => {
    const noSan = await make({ name: 'ek', issuer: issuing, publicKey: ekRsaKey, keyUsage: KU.keyEncipherment, eku: [TCG_KP_EK_CERTIFICATE] });
    expectUntrusted(noSan, [issuing], 'bad_extension');
    const partial = await ekCert({ issuer: issuing, san: tpmSan(undefined, ['2.23.133.2.1', '2.23.133.2.2']) });
    expectUntrusted(partial, [issuing], 'bad_extension');
  });

  test('fail: an RSA EK certificate whose keyUsage is not keyEncipherment is refused', async () => {
    expectUntrusted(await ekCert({ issuer: issuing, keyUsage: KU.digitalSignature }), [issuing], 'key_usage');
  });

  test('fail: an ECC EK certificate whose keyUsage is not keyAgreement is refused', async () => {
    const ek = await ekCert({ issuer: issuing, ek: 'p256', keyUsage: KU.digitalSignature });
    expectUntrusted(ek, [issuing], 'key_usage', [root], EK_P256);
  });

  test('fail: an EK certificate whose EKU lacks tcg-kp-EKCertificate is refused', async () => {
    expectUntrusted(await ekCert({ issuer: issuing, eku: ['1.3.6.1.5.5.7.3.2'] }), [issuing], 'eku');
  });

  test('fail: an EK certificate cannot be a CA certificate', async () => {
    expectUntrusted(await ekCert({ issuer: issuing, ca: true, subject: 'CN=TPM EK', keyUsage: KU.keyEncipherment | KU.keyCertSign }), [issuing], 'bad_extension');
  });

  test('fail: the tcg-ek profile checks no host name and refuses to be given one', () => {
    expectRefused(check({ leaf: ekRsa.der, intermediates: [issuing.der], trustAnchors: [root.der], profile: 'tcg-ek', peerName: { kind: 'dns', value: 'a.example' } }), 'invalid_input');
  });

  test('fail: an EK on a curve other than P-256/P-384 is refused by the tcg-ek profile', async () => {
    const p521 = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-521' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const ek = await make({ name: 'ek', subject: '', issuer: issuing, publicKey: p521.publicKey, keyUsage: KU.keyAgreement, eku: [TCG_KP_EK_CERTIFICATE], extra: [rawExtension('2.5.29.17', true, tpmSan())] });
    expectRefused(check({ leaf: ek.der, intermediates: [issuing.der], trustAnchors: [root.der], profile: 'tcg-ek' }), 'weak_key');
  });

  test('fail: an EK certificate cannot be its own trust anchor (EKs are pinned by key hash, not as anchors)', () => {
    expectUntrusted(ekRsa, [], 'untrusted', [ekRsa]);
  });

  test('RSA-2048 and P-256 EK certificates in the TCG layout validate to the manufacturer root', () => {
    const r = verifyEkCertificate({ ekCertDer: ekRsa.der, ekPublic: EK_RSA, roots: [x(root)], intermediates: [x(issuing)], time: NOW });
    expect(r.chain.map((c) => c.subject)).toEqual(['CN=TPM Maker EK CA', 'CN=TPM Maker Root']);
    expect(verify(ekP256, [issuing], [root], EK_P256)).toBe('ACCEPTED');
    expectAccepted(check({ leaf: ekP256.der, intermediates: [issuing.der], trustAnchors: [root.der], profile: 'tcg-ek' }));
  });
});
