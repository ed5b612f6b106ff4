/**
 * TPM public-area parsing, Names, AK attribute checks and KDFa, without a TPM. The fixtures are
 * TPM2B_PUBLIC files written by tpm2-tools 5.4 against swtpm 0.7 (`tpm2_createek -u`,
 * `tpm2_createak -u -n`, `tpm2_readpublic -o`); the Names were printed by the same tools, so
 * computeName is checked against the TPM, not against itself. tpm-swtpm.test.ts repeats all of
 * this live.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isFleetkeyError } from '@fleetkey/protocol';
import {
  TPMA_OBJECT,
  checkAkAttributes,
  computeName,
  ekCertificateFromNv,
  kdfa,
  makeCredential,
  parseTpm2bPublic,
  parseTpmtPublic,
  tpmPublicToKeyObject,
  verifyCredentialProof,
  type TpmPublic,
} from '../src/tpm/index.js';

import { AK_ECC, AK_ECC_NAME, AK_RSA, AK_RSA_NAME, EK_P256, EK_P384, EK_RSA, hex, NOT_RESTRICTED } from './support/tpm-fixtures.js';
import { codeOfSync } from './support/codes.js';


function detailOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isFleetkeyError(e)) return e.detail ?? '';
    throw e;
  }
  throw new Error('did not throw');
}

/** Returns a copy of a TPM2B_PUBLIC with `patch` applied to the TPMT_PUBLIC at `offset`. */
function patched(tpm2b: Buffer, offset: number, patch: string): Buffer {
  const out = Buffer.from(tpm2b);
  hex(patch).copy(out, 2 + offset);
  return out;
}

/** Copy with the objectAttributes (TPMT_PUBLIC offset 4) replaced. */
function withAttributes(tpm2b: Buffer, attrs: number): Buffer {
  const out = Buffer.from(tpm2b);
  out.writeUInt32BE(attrs >>> 0, 2 + 4);
  return out;
}

describe('parseTpm2bPublic: refusals (TPM_PUBLIC_MALFORMED)', () => {
  it('fail: every truncation of every fixture', () => {
    for (const f of [EK_RSA, EK_P256, EK_P384, AK_ECC, AK_RSA]) {
      for (let n = 0; n < f.length; n++) expect(codeOfSync(() => parseTpm2bPublic(f.subarray(0, n)))).toBe('TPM_PUBLIC_MALFORMED');
    }
  });

  it('fail: truncated TPMT_PUBLIC with a consistent TPM2B size', () => {
    const t = AK_ECC.subarray(2, AK_ECC.length - 1);
    const b = Buffer.concat([Buffer.from([0, t.length]), t]);
    expect(detailOf(() => parseTpm2bPublic(b))).toMatch(/truncated unique\.ecc\.y/);
  });

  it('fail: trailing bytes after the TPM2B, and inside a TPM2B whose size covers them', () => {
    expect(detailOf(() => parseTpm2bPublic(Buffer.concat([AK_ECC, Buffer.from([0])])))).toMatch(/size 88 but 89/);
    const t = Buffer.concat([AK_ECC.subarray(2), Buffer.from([0])]);
    expect(detailOf(() => parseTpm2bPublic(Buffer.concat([Buffer.from([0, t.length]), t])))).toMatch(/1 trailing bytes/);
    expect(codeOfSync(() => parseTpmtPublic(t))).toBe('TPM_PUBLIC_MALFORMED');
  });

  it('fail: unknown or unsupported algorithms', () => {
    expect(detailOf(() => parseTpm2bPublic(patched(AK_ECC, 0, '0008')))).toMatch(/unsupported type 0x0008/); // KEYEDHASH
    expect(detailOf(() => parseTpm2bPublic(patched(AK_ECC, 0, '7777')))).toMatch(/unsupported type/);
    expect(detailOf(() => parseTpm2bPublic(patched(AK_ECC, 2, '0012')))).toMatch(/nameAlg 0x0012/); // SM3
    expect(detailOf(() => parseTpm2bPublic(patched(AK_ECC, 2, '0010')))).toMatch(/nameAlg 0x0010/); // NULL
    expect(detailOf(() => parseTpm2bPublic(patched(EK_RSA, 42, '0026')))).toMatch(/symmetric algorithm 0x0026/); // CAMELLIA
    expect(detailOf(() => parseTpm2bPublic(patched(EK_RSA, 46, '0099')))).toMatch(/symmetric mode 0x0099/);
    expect(detailOf(() => parseTpm2bPublic(patched(AK_ECC, 12, '001b')))).toMatch(/unsupported scheme 0x001b/); // SM2
    expect(detailOf(() => parseTpm2bPublic(patched(AK_ECC, 14, '0012')))).toMatch(/scheme hashAlg 0x0012/);
    expect(detailOf(() => parseTpm2bPublic(patched(AK_ECC, 16, '0010')))).toMatch(/curveID 0x0010/); // BN P256
    expect(detailOf(() => parseTpm2bPublic(patched(AK_ECC, 18, '0099')))).toMatch(/unsupported kdf/);
    expect(detailOf(() => parseTpm2bPublic(patched(AK_RSA, 12, '0018')))).toMatch(/unsupported scheme 0x0018/); // ECDSA on RSA
  });

  it('fail: sizes that contradict the algorithm', () => {
    expect(detailOf(() => parseTpm2bPublic(patched(AK_RSA, 16, '0c00')))).toMatch(/keyBits says 384/); // 3072 bits, modulus 256 B
    expect(detailOf(() => parseTpm2bPublic(patched(AK_RSA, 16, '0801')))).toMatch(/RSA keyBits 2049/);
    expect(detailOf(() => parseTpm2bPublic(patched(EK_RSA, 44, '00a0')))).toMatch(/AES keyBits 160/);
    expect(detailOf(() => parseTpm2bPublic(patched(EK_P256, 8, '001f')))).toMatch(/authPolicy size 31/);
    // P-256 point coordinate declared as 48 bytes exceeds the curve size.
    expect(detailOf(() => parseTpm2bPublic(patched(AK_ECC, 20, '0030')))).toMatch(/unique\.ecc\.x\.size 48 exceeds 32/);
    const shortX = Buffer.concat([AK_ECC.subarray(2, 22), hex('001f'), AK_ECC.subarray(25)]);
    expect(detailOf(() => parseTpmtPublic(shortX))).toMatch(/coordinates must be 32 bytes/);
    expect(codeOfSync(() => parseTpmtPublic(Buffer.alloc(2000)))).toBe('TPM_PUBLIC_MALFORMED');
  });

  it('fail: reserved attribute bits, even exponent, even or short modulus', () => {
    expect(detailOf(() => parseTpm2bPublic(withAttributes(AK_ECC, 0x00050072 | 1)))).toMatch(/reserved/);
    expect(detailOf(() => parseTpm2bPublic(withAttributes(AK_ECC, 0x00050072 | (1 << 31))))).toMatch(/reserved/);
    expect(detailOf(() => parseTpm2bPublic(patched(AK_RSA, 18, '00010000')))).toMatch(/exponent 65536/);
    expect(detailOf(() => parseTpm2bPublic(patched(AK_RSA, 18, '00000001')))).toMatch(/exponent 1/);
    const evenMod = Buffer.from(AK_RSA);
    evenMod[evenMod.length - 1] = 0x54;
    expect(detailOf(() => parseTpm2bPublic(evenMod))).toMatch(/modulus is even/);
    expect(detailOf(() => parseTpm2bPublic(patched(AK_RSA, 24, '00')))).toMatch(/shorter than keyBits/);
  });

  it('fail: an ECC point that is not on the curve is refused when converted to a key', () => {
    const off = Buffer.from(AK_ECC);
    off[off.length - 1]! ^= 1;
    const parsed = parseTpm2bPublic(off);
    expect(codeOfSync(() => tpmPublicToKeyObject(parsed))).toBe('TPM_PUBLIC_MALFORMED');
  });

  it('fail: random mutations either parse or throw TPM_PUBLIC_MALFORMED, never anything else', () => {
    const fixtures = [EK_RSA, EK_P256, EK_P384, AK_ECC, AK_RSA];
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: fixtures.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.nat({ max: 8 }),
        (which, edits, cut) => {
          const b = Buffer.from(fixtures[which]!);
          for (const [pos, val] of edits) b[pos % b.length] = val;
          const input = b.subarray(0, b.length - cut);
          const code = codeOfSync(() => tpmPublicToKeyObject(parseTpm2bPublic(input)));
          return code === 'ACCEPTED' || code === 'TPM_PUBLIC_MALFORMED';
        },
      ),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 700 }), (bytes) => {
        const code = codeOfSync(() => parseTpm2bPublic(bytes));
        return code === 'ACCEPTED' || code === 'TPM_PUBLIC_MALFORMED';
      }),
      { numRuns: 2000 },
    );
  });
});

describe('parseTpm2bPublic: real public areas', () => {
  it('RSA EK: template L-1 fields', () => {
    const p = parseTpm2bPublic(EK_RSA);
    expect(p.type).toBe('rsa');
    if (p.type !== 'rsa') return;
    expect(p.nameAlg).toBe('sha256');
    expect(p.objectAttributes).toBe(0x000300b2);
    expect(p.authPolicy.toString('hex')).toBe('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa');
    expect(p.symmetric).toEqual({ algorithm: 'aes', keyBits: 128, mode: 'cfb' });
    expect(p.scheme).toBeNull();
    expect(p.keyBits).toBe(2048);
    expect(p.exponent).toBe(65537);
    expect(p.modulus.length).toBe(256);
    expect(p.tpmtPublic.equals(EK_RSA.subarray(2))).toBe(true);
    const jwk = tpmPublicToKeyObject(p).export({ format: 'jwk' });
    expect(jwk.e).toBe('AQAB');
    expect(Buffer.from(jwk.n ?? '', 'base64url').equals(p.modulus)).toBe(true);
  });

  it('ECC EKs: P-256/SHA-256/AES-128 and P-384/SHA-384/AES-256', () => {
    const a = parseTpm2bPublic(EK_P256);
    const b = parseTpm2bPublic(EK_P384);
    expect(a.type === 'ecc' && a.curve).toBe('P-256');
    expect(b.type === 'ecc' && b.curve).toBe('P-384');
    expect(b.nameAlg).toBe('sha384');
    expect(b.symmetric).toEqual({ algorithm: 'aes', keyBits: 256, mode: 'cfb' });
    expect(tpmPublicToKeyObject(b).asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
  });

  it('AKs: scheme and hash', () => {
    const e = parseTpm2bPublic(AK_ECC);
    const r = parseTpm2bPublic(AK_RSA);
    expect(e.scheme).toEqual({ scheme: 'ecdsa', hashAlg: 'sha256' });
    expect(r.scheme).toEqual({ scheme: 'rsassa', hashAlg: 'sha256' });
  });

  it('computeName equals the Name tpm2-tools printed', () => {
    expect(computeName(AK_ECC.subarray(2)).toString('hex')).toBe(AK_ECC_NAME);
    expect(computeName(AK_RSA.subarray(2)).toString('hex')).toBe(AK_RSA_NAME);
    expect(computeName(parseTpm2bPublic(AK_RSA)).toString('hex')).toBe(AK_RSA_NAME);
    // SHA-384 nameAlg gives 0x000c || SHA-384; tpm2_readpublic printed this for 0x81010016.
    expect(computeName(EK_P384.subarray(2)).toString('hex')).toBe(
      '000cf2f245a5a4483c6d3e3fdbd1bca145102d40b2a28d3eb3bc87e52e55fadc3bd98e73d9e856a23cfe5f194600053382c2',
    );
    expect(codeOfSync(() => computeName(AK_ECC))).toBe('TPM_PUBLIC_MALFORMED'); // TPM2B given where TPMT expected
  });
});

describe('checkAkAttributes', () => {
  const ak = parseTpm2bPublic(AK_ECC);
  const withAttr = (attrs: number): TpmPublic => parseTpm2bPublic(withAttributes(AK_ECC, attrs));

  it('fail: each required bit clear, or decrypt set, names the bit', () => {
    for (const bit of ['fixedTPM', 'fixedParent', 'sensitiveDataOrigin', 'restricted', 'sign'] as const) {
      const e = (() => {
        try {
          checkAkAttributes(withAttr(ak.objectAttributes & ~TPMA_OBJECT[bit]));
        } catch (err) {
          return err;
        }
        return undefined;
      })();
      expect(isFleetkeyError(e) && e.code).toBe('TPM_AK_ATTRIBUTES');
      expect(isFleetkeyError(e) && e.detail).toBe(`${bit} is clear`);
    }
    expect(detailOf(() => checkAkAttributes(withAttr(ak.objectAttributes | TPMA_OBJECT.decrypt)))).toBe('decrypt is set');
  });

  it('fail: a real non-restricted TPM signing key', () => {
    expect(detailOf(() => checkAkAttributes(parseTpm2bPublic(NOT_RESTRICTED)))).toBe('restricted is clear');
  });

  it('fail: an EK (restricted decrypt) is not an AK', () => {
    expect(codeOfSync(() => checkAkAttributes(parseTpm2bPublic(EK_RSA)))).toBe('TPM_AK_ATTRIBUTES');
  });

  it('fail: SHA-1 nameAlg or scheme hash, NULL scheme, non-signing scheme, symmetric set', () => {
    expect(detailOf(() => checkAkAttributes(parseTpm2bPublic(patched(AK_ECC, 2, '0004'))))).toBe('nameAlg is sha1');
    expect(detailOf(() => checkAkAttributes(parseTpm2bPublic(patched(AK_ECC, 14, '0004'))))).toBe('scheme hash is sha1');
    expect(detailOf(() => checkAkAttributes(parseTpm2bPublic(patched(AK_ECC, 12, '0019'))))).toMatch(/ecdh is not ECDSA/);
    expect(detailOf(() => checkAkAttributes(parseTpm2bPublic(patched(AK_RSA, 12, '0017'))))).toMatch(/oaep is not a signing/);
    const nullScheme = Buffer.concat([AK_ECC.subarray(2, 14), hex('0010'), AK_ECC.subarray(18)]);
    expect(detailOf(() => checkAkAttributes(parseTpmtPublic(nullScheme)))).toBe('scheme is TPM_ALG_NULL');
    const withSym = Buffer.concat([AK_ECC.subarray(2, 12), hex('000600800043'), AK_ECC.subarray(14)]);
    expect(detailOf(() => checkAkAttributes(parseTpmtPublic(withSym)))).toBe('symmetric is not TPM_ALG_NULL');
  });

  it('accepts tpm2_createak keys and reports how they sign', () => {
    expect(checkAkAttributes(ak)).toEqual({ scheme: 'ecdsa', hash: 'sha256' });
    expect(checkAkAttributes(parseTpm2bPublic(AK_RSA))).toEqual({ scheme: 'rsassa', hash: 'sha256' });
  });
});

describe('kdfa', () => {
  // libtpms / TCG reference implementation self-test vector (KdfTestData.h): 160-bit output.
  const key = hex('271FA08BBDC5060EC3DFA928FF9B73123A12DA0C');
  const u = hex('CE244F395DCA7391');
  const v = hex('DA504031DDF12E83');
  it.each([
    ['sha1', '55b5a7184aa07423c47dae766c26a2377d7cf851'],
    ['sha256', 'bb0259e1c8ba607e6a2cd704b69a902e9ade84c4'],
    ['sha384', '1dce70c9113eb2dba47bd9cfc72bf46f45b09312'],
    ['sha512', '8be2c1b85b78569b9fa759f5857c56d684810fd3'],
  ] as const)('matches the reference self-test vector for %s', (h, out) => {
    expect(kdfa(h, key, 'KDFSELFTESTLABEL', u, v, 160).toString('hex')).toBe(out);
    // The label's terminating 0x00 is part of the input whether or not the caller wrote it.
    expect(kdfa(h, key, 'KDFSELFTESTLABEL\0', u, v, 160).toString('hex')).toBe(out);
    expect(kdfa(h, key, 'KDFSELFTESTLABEX', u, v, 160).toString('hex')).not.toBe(out);
  });
});

describe('makeCredential: refusals before any TPM is involved', () => {
  const akName = hex(AK_ECC_NAME);
  it('fail: credential empty or longer than the EK nameAlg digest', () => {
    expect(codeOfSync(() => makeCredential({ ekPublic: EK_RSA, akName, credential: Buffer.alloc(0) }))).toBe('TPM_CREDENTIAL_INVALID');
    expect(codeOfSync(() => makeCredential({ ekPublic: EK_RSA, akName, credential: Buffer.alloc(33) }))).toBe('TPM_CREDENTIAL_INVALID');
    expect(makeCredential({ ekPublic: EK_P384, akName, credential: Buffer.alloc(48, 1) }).credentialBlob.length).toBe(2 + 2 + 48 + 50);
  });

  it('fail: AK name with an unknown algorithm or a wrong length', () => {
    const cred = Buffer.alloc(16, 7);
    expect(codeOfSync(() => makeCredential({ ekPublic: EK_RSA, akName: akName.subarray(0, 33), credential: cred }))).toBe('TPM_CREDENTIAL_INVALID');
    expect(codeOfSync(() => makeCredential({ ekPublic: EK_RSA, akName: hex('0012' + AK_ECC_NAME.slice(4)), credential: cred }))).toBe('TPM_CREDENTIAL_INVALID');
    expect(codeOfSync(() => makeCredential({ ekPublic: EK_RSA, akName: Buffer.alloc(1), credential: cred }))).toBe('TPM_CREDENTIAL_INVALID');
  });

  it('fail: the "EK" is a signing key, has no symmetric, or is malformed', () => {
    const cred = Buffer.alloc(16, 7);
    expect(codeOfSync(() => makeCredential({ ekPublic: AK_ECC, akName, credential: cred }))).toBe('TPM_EK_UNSUPPORTED');
    expect(codeOfSync(() => makeCredential({ ekPublic: NOT_RESTRICTED, akName, credential: cred }))).toBe('TPM_EK_UNSUPPORTED');
    expect(codeOfSync(() => makeCredential({ ekPublic: EK_RSA.subarray(0, 40), akName, credential: cred }))).toBe('TPM_PUBLIC_MALFORMED');
  });

  it('produces TPM2B structures whose sizes follow the EK parameters', () => {
    const cred = Buffer.alloc(16, 7);
    const rsa = makeCredential({ ekPublic: EK_RSA, akName, credential: cred });
    expect(rsa.encryptedSecret.readUInt16BE(0)).toBe(256);
    expect(rsa.encryptedSecret.length).toBe(258);
    // TPM2B_ID_OBJECT = size || TPM2B_DIGEST(HMAC-SHA256) || AES-CFB(UINT16 size || credential)
    expect(rsa.credentialBlob.readUInt16BE(0)).toBe(2 + 32 + 2 + 16);
    expect(rsa.credentialBlob.readUInt16BE(2)).toBe(32);
    const ecc = makeCredential({ ekPublic: EK_P256, akName, credential: cred });
    expect(ecc.encryptedSecret.toString('hex').slice(0, 8)).toBe('00440020');
    // A fresh seed every time: two calls never produce the same ciphertext.
    expect(makeCredential({ ekPublic: EK_P256, akName, credential: cred }).credentialBlob.equals(ecc.credentialBlob)).toBe(false);
  });
});

describe('verifyCredentialProof', () => {
  it('fail: different, shorter or empty', () => {
    const c = Buffer.from('0123456789abcdef');
    expect(codeOfSync(() => verifyCredentialProof(c, Buffer.from('0123456789abcdeF')))).toBe('TPM_CREDENTIAL_PROOF_INVALID');
    expect(codeOfSync(() => verifyCredentialProof(c, c.subarray(0, 15)))).toBe('TPM_CREDENTIAL_PROOF_INVALID');
    expect(codeOfSync(() => verifyCredentialProof(Buffer.alloc(0), Buffer.alloc(0)))).toBe('TPM_CREDENTIAL_PROOF_INVALID');
  });
  it('accepts the same bytes', () => {
    expect(() => verifyCredentialProof(Buffer.from('abc'), Buffer.from('abc'))).not.toThrow();
  });
});

describe('ekCertificateFromNv', () => {
  // Any DER SEQUENCE will do for framing: a 300-byte one needs the long length form.
  const der = Buffer.concat([hex('3082012c'), Buffer.alloc(300, 0x41)]);
  it('fail: not DER, length past the end, garbage after the certificate', () => {
    expect(codeOfSync(() => ekCertificateFromNv(hex('0482012c')))).toBe('TPM_EK_CERT_MALFORMED');
    expect(codeOfSync(() => ekCertificateFromNv(der.subarray(0, 200)))).toBe('TPM_EK_CERT_MALFORMED');
    expect(codeOfSync(() => ekCertificateFromNv(Buffer.concat([der, hex('0000ff')])))).toBe('TPM_EK_CERT_MALFORMED');
    expect(codeOfSync(() => ekCertificateFromNv(Buffer.concat([der, hex('01')])))).toBe('TPM_EK_CERT_MALFORMED');
    expect(codeOfSync(() => ekCertificateFromNv(hex('3080')))).toBe('TPM_EK_CERT_MALFORMED'); // indefinite length
    expect(codeOfSync(() => ekCertificateFromNv(Buffer.alloc(9000, 0x30)))).toBe('TPM_EK_CERT_MALFORMED');
  });
  it('strips 0x00 or 0xFF padding of an oversized index', () => {
    expect(ekCertificateFromNv(der).equals(der)).toBe(true);
    expect(ekCertificateFromNv(Buffer.concat([der, Buffer.alloc(50)])).equals(der)).toBe(true);
    expect(ekCertificateFromNv(Buffer.concat([der, Buffer.alloc(50, 0xff)])).equals(der)).toBe(true);
  });
});
