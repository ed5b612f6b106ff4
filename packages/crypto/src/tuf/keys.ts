import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { TufKey } from '@fleetkey/protocol';
import { canonicalBytes } from './canonical.js';

/** ed25519 SPKI DER prefix (RFC 8410): the 32 raw public key bytes follow it. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * The TUF key object of a public key (TUF 1.0 §4.2 KEY formats, securesystemslib's
 * representation): ed25519 as 64 hex chars, ECDSA P-256 as a SubjectPublicKeyInfo PEM.
 */
export function tufKeyOf(publicKey: KeyObject): TufKey {
  if (publicKey.asymmetricKeyType === 'ed25519') {
    const der = publicKey.export({ format: 'der', type: 'spki' });
    return { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: der.subarray(ED25519_SPKI_PREFIX.length).toString('hex') } };
  }
  if (publicKey.asymmetricKeyType === 'ec' && publicKey.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    return { keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256', keyval: { public: publicKey.export({ format: 'pem', type: 'spki' }).toString() } };
  }
  throw new TypeError('TUF keys are ed25519 or ECDSA P-256');
}

/** TUF 1.0 §4.2: KEYID = hex(sha256(canonical JSON of the key object)). */
export function tufKeyId(key: TufKey): string {
  return createHash('sha256').update(canonicalBytes(key)).digest('hex');
}

/** The Node public key of a TUF key object (throws on a malformed one). */
export function publicKeyOfTuf(key: TufKey): KeyObject {
  if (key.keytype === 'ed25519') {
    return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(key.keyval.public, 'hex')]), format: 'der', type: 'spki' });
  }
  const k = createPublicKey(key.keyval.public);
  if (k.asymmetricKeyType !== 'ec' || k.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new TypeError('ecdsa-sha2-nistp256 key is not on P-256');
  return k;
}

/** A fresh ed25519 key pair (online keys, tests). */
export function generateTufKeyPair(type: 'ed25519' | 'ecdsa' = 'ed25519'): { privateKey: KeyObject; publicKey: KeyObject } {
  return type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}
