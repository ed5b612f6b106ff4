import type { KeyObject } from 'node:crypto';

/** Signature algorithms a Fleetkey CA key may use. */
export type SignatureAlgorithm = 'ES256' | 'ES384';

/**
 * The one seam through which every CA signature is made. Implementations: software keys held
 * in memory after decryption, and PKCS#11 tokens where the private key never leaves the token.
 * Only the `ca` module of the server holds Signers for issuing keys.
 */
export interface Signer {
  readonly algorithm: SignatureAlgorithm;
  /** The public half, for building SubjectPublicKeyInfo, SKI/AKI and for verification. */
  readonly publicKey: KeyObject;
  /**
   * Signs `data` (the message, not a digest: the signer hashes with the algorithm's hash)
   * and returns the signature DER-encoded as ECDSA-Sig-Value (RFC 3279 §2.2.3), the form
   * X.509 certificates, CRLs and OCSP responses carry.
   */
  sign(data: Uint8Array): Promise<Buffer>;
  /** Releases the token session or zeroes the in-memory key where the implementation can. */
  close(): Promise<void>;
}
