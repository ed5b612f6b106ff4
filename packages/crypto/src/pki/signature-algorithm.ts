import { webcrypto } from 'node:crypto';

type Crypto = webcrypto.Crypto;
type CryptoKey = webcrypto.CryptoKey;
type EcdsaParams = webcrypto.EcdsaParams;
type SubtleCrypto = webcrypto.SubtleCrypto;
type BufferSource = webcrypto.BufferSource;
import type { SignatureAlgorithm, Signer } from '../signer/signer.js';
import { DER_NULL, DerError, children, oid, readExactly, seq } from './der.js';
import { OID } from './oids.js';

/** AlgorithmIdentifier for the signer's algorithm; ECDSA carries no parameters (RFC 5758 §3.2). */
const ALG_ID: Record<SignatureAlgorithm, Buffer> = {
  ES256: seq(oid(OID.ecdsaWithSha256)),
  ES384: seq(oid(OID.ecdsaWithSha384)),
};
export const signatureAlgorithmId = (alg: SignatureAlgorithm): Buffer => ALG_ID[alg];
export const sha1AlgorithmId = (): Buffer => seq(oid(OID.sha1), DER_NULL);

const FIELD_BYTES: Record<SignatureAlgorithm, number> = { ES256: 32, ES384: 48 };
const WEB_HASH: Record<SignatureAlgorithm, string> = { ES256: 'SHA-256', ES384: 'SHA-384' };
const WEB_CURVE: Record<SignatureAlgorithm, string> = { ES256: 'P-256', ES384: 'P-384' };

/** DER ECDSA-Sig-Value (RFC 3279 §2.2.3) to the fixed-width r||s WebCrypto returns. */
export function ecdsaDerToP1363(der: Buffer, alg: SignatureAlgorithm): Buffer {
  const size = FIELD_BYTES[alg];
  const parts = children(readExactly(der, 0x30));
  if (parts.length !== 2) throw new DerError('ECDSA-Sig-Value needs r and s');
  const out = Buffer.alloc(size * 2);
  parts.forEach((p, i) => {
    if (p.tag !== 0x02) throw new DerError('r/s must be INTEGERs');
    let v = p.value;
    while (v.length > size && v[0] === 0) v = v.subarray(1);
    if (v.length > size) throw new DerError('r/s too long');
    v.copy(out, size * (i + 1) - v.length);
  });
  return out;
}

/**
 * A WebCrypto facade for @peculiar/x509 whose `sign` goes through our Signer (x509 takes the
 * crypto provider as a parameter): the library never sees a private key, so the same code
 * works with a PKCS#11 signer. Everything else is Node's WebCrypto.
 */
export function signerCrypto(signer: Signer): { crypto: Crypto; signingKey: CryptoKey; signingAlgorithm: EcdsaParams } {
  const base = webcrypto.subtle;
  const subtle = {
    sign: async (_alg: unknown, _key: unknown, data: BufferSource): Promise<ArrayBuffer> => {
      const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      const p1363 = ecdsaDerToP1363(await signer.sign(bytes), signer.algorithm);
      return p1363.buffer.slice(p1363.byteOffset, p1363.byteOffset + p1363.byteLength) as ArrayBuffer;
    },
    digest: base.digest.bind(base),
    importKey: base.importKey.bind(base),
    exportKey: base.exportKey.bind(base),
    verify: base.verify.bind(base),
  } as unknown as SubtleCrypto;
  const crypto = {
    subtle,
    getRandomValues: <T extends ArrayBufferView | null>(array: T): T => webcrypto.getRandomValues(array as never) as T,
    randomUUID: () => webcrypto.randomUUID(),
  } as unknown as Crypto;
  // x509 reads only `algorithm` from the signing key; the key material stays behind the Signer.
  const signingKey = { algorithm: { name: 'ECDSA', namedCurve: WEB_CURVE[signer.algorithm] }, type: 'private' } as unknown as CryptoKey;
  return { crypto, signingKey, signingAlgorithm: { name: 'ECDSA', hash: WEB_HASH[signer.algorithm] } };
}
