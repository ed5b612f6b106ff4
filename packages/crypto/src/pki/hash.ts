import { createHash } from 'node:crypto';
import { DerError, children, readExactly } from './der.js';

export const sha1 = (data: Uint8Array): Buffer => createHash('sha1').update(data).digest();
export const sha256Hex = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/**
 * The subjectPublicKey BIT STRING contents (without the unused-bits octet) of a DER
 * SubjectPublicKeyInfo: the input of key identifiers and OCSP issuerKeyHash.
 */
export function subjectPublicKeyBits(spkiDer: Buffer): Buffer {
  const spki = readExactly(spkiDer, 0x30);
  const parts = children(spki);
  const bits = parts[1];
  if (parts.length !== 2 || parts[0]!.tag !== 0x30 || bits === undefined || bits.tag !== 0x03 || bits.value[0] !== 0) {
    throw new DerError('not a SubjectPublicKeyInfo');
  }
  return bits.value.subarray(1);
}

/** RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value. */
export const keyIdentifier = (spkiDer: Buffer): Buffer => sha1(subjectPublicKeyBits(spkiDer));
