import { createPublicKey, sign as nodeSign, type KeyObject } from 'node:crypto';
import type { SignatureAlgorithm, Signer } from './signer.js';

const HASH: Record<SignatureAlgorithm, string> = { ES256: 'sha256', ES384: 'sha384' };
const CURVE: Record<SignatureAlgorithm, string> = { ES256: 'prime256v1', ES384: 'secp384r1' };

/**
 * A Signer over a private KeyObject held in process memory (decrypted from its key file at
 * start). The KeyObject is cached: re-parsing a PEM per signature is an order of magnitude slower.
 */
export class SoftwareSigner implements Signer {
  readonly algorithm: SignatureAlgorithm;
  readonly publicKey: KeyObject;
  #key: KeyObject | undefined;

  constructor(privateKey: KeyObject) {
    if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ec') {
      throw new TypeError('SoftwareSigner needs an EC private key');
    }
    const curve = privateKey.asymmetricKeyDetails?.namedCurve;
    const algorithm = (Object.keys(CURVE) as SignatureAlgorithm[]).find((a) => CURVE[a] === curve);
    if (algorithm === undefined) throw new TypeError(`unsupported curve ${String(curve)}`);
    this.algorithm = algorithm;
    this.#key = privateKey;
    this.publicKey = createPublicKey(privateKey);
  }

  async sign(data: Uint8Array): Promise<Buffer> {
    return this.signSync(data);
  }

  /** Synchronous form for hot paths that own a software key (bulk issuance, benchmarks). */
  signSync(data: Uint8Array): Buffer {
    if (this.#key === undefined) throw new Error('signer is closed');
    // DER ECDSA-Sig-Value is Node's default dsaEncoding, the form X.509 wants (RFC 3279 §2.2.3).
    return nodeSign(HASH[this.algorithm], data, this.#key);
  }

  async close(): Promise<void> {
    // A KeyObject cannot be wiped from JS; dropping the reference lets it be collected.
    this.#key = undefined;
  }
}
