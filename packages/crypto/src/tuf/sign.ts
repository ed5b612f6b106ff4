import { createPublicKey, sign as nodeSign, type KeyObject } from 'node:crypto';
import type { Signed, TufKey, TufSignature } from '@fleetkey/protocol';
import type { Signer } from '../signer/signer.js';
import { canonicalBytes } from './canonical.js';
import { tufKeyId, tufKeyOf } from './keys.js';

/** Something that signs TUF metadata: a key file's private key, a PKCS#11 token key. */
export interface TufSigner {
  readonly key: TufKey;
  readonly keyId: string;
  sign(data: Buffer): Promise<Buffer>;
}

/** A TufSigner over an in-memory private key (ed25519, or ECDSA P-256 with a DER signature). */
export function softwareTufSigner(privateKey: KeyObject): TufSigner {
  const key = tufKeyOf(createPublicKey(privateKey));
  // securesystemslib's ecdsa-sha2-nistp256 signatures are DER (Node's default dsaEncoding);
  // ed25519 signs the message itself (no pre-hash).
  const hash = key.keytype === 'ed25519' ? null : 'sha256';
  return { key, keyId: tufKeyId(key), sign: async (data) => nodeSign(hash, data, privateKey) };
}

/** A TufSigner over the CA Signer seam (PKCS#11 token keys, P-256 only: DER signatures). */
export function tufSignerFrom(signer: Signer): TufSigner {
  if (signer.algorithm !== 'ES256') throw new TypeError('TUF ecdsa-sha2-nistp256 needs a P-256 key');
  const key = tufKeyOf(signer.publicKey);
  return { key, keyId: tufKeyId(key), sign: (data) => signer.sign(data) };
}

/**
 * Adds (or replaces) this signer's signature over the canonical `signed` part (TUF 1.0 §4.2).
 * Other signatures are kept, so a threshold is collected by passing the document around.
 */
export async function addSignature<T>(doc: Signed<T>, signer: TufSigner): Promise<Signed<T>> {
  const sig = (await signer.sign(canonicalBytes(doc.signed))).toString('hex');
  const signatures: TufSignature[] = doc.signatures.filter((s) => s.keyid !== signer.keyId);
  signatures.push({ keyid: signer.keyId, sig });
  return { signatures, signed: doc.signed };
}

/** A freshly signed document from its `signed` part and the signers. */
export async function signMetadata<T>(signed: T, signers: readonly TufSigner[]): Promise<Signed<T>> {
  let doc: Signed<T> = { signatures: [], signed };
  for (const s of signers) doc = await addSignature(doc, s);
  return doc;
}
