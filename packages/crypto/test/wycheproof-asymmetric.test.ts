/**
 * Wycheproof ECDSA P-256 (DER and P1363), Ed25519 and ECDH P-256 through Node's crypto. These
 * check the platform behaves as our code assumes: strict DER (no BER, no extra zeros, no
 * trailing bytes), range checks on r and s, invalid-curve points refused. The P1363 vectors also
 * run through our p1363ToDer (the PKCS#11 signer's r||s → DER step) to show the conversion
 * never turns an invalid signature into a valid one, nor the reverse.
 */
import {
  createECDH,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  verify,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { p1363ToDer } from '../src/primitives/index.js';

const DIR = fileURLToPath(new URL('./vectors/wycheproof/', import.meta.url));
type Result = 'valid' | 'invalid' | 'acceptable';
interface Vector { tcId: number; comment: string; flags: string[]; result: Result; [k: string]: unknown }
interface Group { tests: Vector[]; publicKeyDer?: string; [k: string]: unknown }
interface Suite { numberOfTests: number; testGroups: Group[] }
const load = (name: string): Suite => JSON.parse(readFileSync(DIR + name, 'utf8')) as Suite;
const hex = (v: unknown): Buffer => Buffer.from(String(v), 'hex');

const tally: Record<string, Record<string, number>> = {};
function count(file: string, key: string): void {
  const t = (tally[file] ??= {});
  t[key] = (t[key] ?? 0) + 1;
}
afterAll(() => {
  console.log('wycheproof (asymmetric):', JSON.stringify(tally, null, 1));
});

function spki(der: string | undefined): KeyObject {
  return createPublicKey({ key: hex(der), format: 'der', type: 'spki' });
}

/** Node's verify either returns false or throws on garbage; both are a refusal. */
function verifies(fn: () => boolean): boolean {
  try {
    return fn();
  } catch {
    return false;
  }
}

describe('wycheproof ECDSA P-256 SHA-256, DER signatures', () => {
  const suite = load('ecdsa_secp256r1_sha256_test.json');
  it('every vector gets its verdict (no acceptable cases in this file)', () => {
    let n = 0;
    for (const g of suite.testGroups) {
      const key = spki(g.publicKeyDer);
      for (const t of g.tests) {
        n++;
        const ok = verifies(() => verify('sha256', hex(t['msg']), key, hex(t['sig'])));
        expect(t.result).not.toBe('acceptable');
        expect(ok, `tcId ${t.tcId} ${t.comment}`).toBe(t.result === 'valid');
        count('ecdsa_p256_der', `${t.result}:${ok ? 'accepted' : 'refused'}`);
      }
    }
    expect(n).toBe(suite.numberOfTests);
  });
});

describe('wycheproof ECDSA P-256 SHA-256, P1363 signatures', () => {
  const suite = load('ecdsa_secp256r1_sha256_p1363_test.json');
  it('Node with dsaEncoding ieee-p1363, and p1363ToDer then Node DER, agree with every verdict', () => {
    let n = 0;
    for (const g of suite.testGroups) {
      const key = spki(g.publicKeyDer);
      for (const t of g.tests) {
        n++;
        const msg = hex(t['msg']);
        const sig = hex(t['sig']);
        const label = `tcId ${t.tcId} ${t.comment}`;
        const direct = verifies(() => verify('sha256', msg, { key, dsaEncoding: 'ieee-p1363' }, sig));
        expect(direct, label).toBe(t.result === 'valid');
        // Our converter only accepts well-formed r||s (64 bytes for P-256); odd lengths throw.
        const viaDer = verifies(() => sig.length === 64 && verify('sha256', msg, key, p1363ToDer(sig)));
        expect(viaDer, `${label} via p1363ToDer`).toBe(t.result === 'valid');
        count('ecdsa_p256_p1363', `${t.result}:${direct ? 'accepted' : 'refused'}`);
      }
    }
    expect(n).toBe(suite.numberOfTests);
  });
});

describe('wycheproof Ed25519', () => {
  const suite = load('ed25519_test.json');
  it('every vector gets its verdict (malleable S, truncated, trailing garbage refused)', () => {
    let n = 0;
    for (const g of suite.testGroups) {
      const key = spki(g.publicKeyDer);
      for (const t of g.tests) {
        n++;
        const ok = verifies(() => verify(null, hex(t['msg']), key, hex(t['sig'])));
        expect(ok, `tcId ${t.tcId} ${t.comment}`).toBe(t.result === 'valid');
        count('ed25519', `${t.result}:${ok ? 'accepted' : 'refused'}`);
      }
    }
    expect(n).toBe(suite.numberOfTests);
  });
});

describe('wycheproof ECDH P-256 (SPKI-encoded peer keys)', () => {
  const suite = load('ecdh_secp256r1_test.json');

  function privateKeyFromScalar(d: Buffer): KeyObject {
    // Vectors carry the scalar as a signed big-endian integer (a leading 00 when the high bit is set).
    const scalar = d.length > 32 ? d.subarray(d.length - 32) : Buffer.concat([Buffer.alloc(32 - d.length), d]);
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(scalar);
    const pub = ecdh.getPublicKey();
    return createPrivateKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        d: scalar.toString('base64url'),
        x: pub.subarray(1, 33).toString('base64url'),
        y: pub.subarray(33, 65).toString('base64url'),
      },
      format: 'jwk',
    });
  }

  // Known platform deviation (Node 20 / OpenSSL 3.0): SPKIs with *explicit* curve parameters
  // that omit the cofactor or set it to n are marked invalid by Wycheproof, yet OpenSSL maps
  // them to prime256v1 and computes the (correct) P-256 secret. Harmless for the arithmetic, but
  // it means Node will not refuse explicit-parameter encodings for us: any code parsing a peer's
  // SPKI must insist on the namedCurve form (RFC 5480 §2.1.1 forbids implicit/specified curves
  // in PKIX). Pinned so a change in the platform shows up here.
  const KNOWN_ACCEPTED_INVALID = new Set([359, 361]);

  it('valid → the shared secret; invalid → refused; acceptable → either, but never a wrong secret', () => {
    let n = 0;
    for (const g of suite.testGroups) {
      for (const t of g.tests) {
        n++;
        const label = `tcId ${t.tcId} ${t.comment} ${t.flags.join(',')}`;
        let shared: Buffer | undefined;
        try {
          const publicKey = spki(String(t['public']));
          shared = diffieHellman({ privateKey: privateKeyFromScalar(hex(t['private'])), publicKey });
        } catch {
          shared = undefined;
        }
        if (t.result === 'valid') expect(shared?.toString('hex'), label).toBe(t['shared']);
        else if (t.result === 'invalid' && KNOWN_ACCEPTED_INVALID.has(t.tcId)) {
          expect(t.flags, label).toContain('UnnamedCurve');
          expect(shared?.toString('hex'), label).toBe(t['shared']);
          count('ecdh_p256', 'invalid:accepted (known OpenSSL deviation, explicit params)');
          continue;
        } else if (t.result === 'invalid') expect(shared, label).toBeUndefined();
        else if (shared !== undefined) expect(shared.toString('hex'), label).toBe(t['shared']);
        count('ecdh_p256', `${t.result}:${shared === undefined ? 'refused' : 'accepted'}`);
      }
    }
    expect(n).toBe(suite.numberOfTests);
  });
});

describe('p1363ToDer', () => {
  it('fail: refuses empty, odd-length and oversized input', () => {
    expect(() => p1363ToDer(Buffer.alloc(0))).toThrow(RangeError);
    expect(() => p1363ToDer(Buffer.alloc(63))).toThrow(RangeError);
    expect(() => p1363ToDer(Buffer.alloc(134))).toThrow(RangeError);
  });
  it('encodes minimal positive INTEGERs (strips zeros, pads a high bit)', () => {
    const raw = Buffer.concat([Buffer.alloc(31), Buffer.from([0x01]), Buffer.from([0x80]), Buffer.alloc(31, 0xff)]);
    expect(p1363ToDer(raw).toString('hex')).toBe(`3026020101022100${'80' + 'ff'.repeat(31)}`);
  });
});
