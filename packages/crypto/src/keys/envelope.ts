import { createPrivateKey, type KeyObject } from 'node:crypto';
import { FleetkeyError, isFleetkeyError } from '@fleetkey/protocol';
import { aes256GcmDecrypt, aes256GcmEncrypt } from '../primitives/aes-gcm.js';
import { zero } from '../primitives/bytes.js';
import {
  aadFor,
  checkLabel,
  decodeEnvelope,
  encodeEnvelope,
  type EnvelopeContent,
} from './envelope-format.js';
import { deriveEnvelopeKey, newKdfParams, type KeyProtector } from './protector.js';

async function seal(plaintext: Uint8Array, protector: KeyProtector, label: string, content: EnvelopeContent): Promise<Buffer> {
  checkLabel(label);
  const kdf = newKdfParams(protector);
  const key = await deriveEnvelopeKey(protector, kdf);
  try {
    const sealed = aes256GcmEncrypt(key, plaintext, aadFor(label, content, kdf));
    return encodeEnvelope({ label, content, kdf, sealed });
  } finally {
    zero(key);
  }
}

async function open(bytes: Uint8Array, protector: KeyProtector, label: string, content: EnvelopeContent): Promise<Buffer> {
  checkLabel(label);
  const env = decodeEnvelope(bytes);
  if (env.label !== label) {
    throw new FleetkeyError('KEY_FILE_WRONG_PURPOSE', { detail: `envelope label ${env.label}, expected ${label}` });
  }
  if (env.content !== content) {
    throw new FleetkeyError('KEY_FILE_WRONG_PURPOSE', { detail: `envelope holds ${env.content}, expected ${content}` });
  }
  const key = await deriveEnvelopeKey(protector, env.kdf);
  try {
    // The AAD is rebuilt from the label the caller expects, not the one stored: editing the
    // stored label to match still fails the tag.
    return aes256GcmDecrypt(key, env.sealed, aadFor(label, content, env.kdf));
  } catch (e) {
    if (isFleetkeyError(e) && e.code === 'DECRYPT_FAILED') {
      throw new FleetkeyError('KEY_FILE_CORRUPT', { detail: `envelope ${label}: wrong secret or tampered`, cause: e });
    }
    throw e;
  } finally {
    zero(key);
  }
}

/** Seals a raw secret (group key, HMAC key) for storage; label names its purpose. */
export function sealSecret(secret: Uint8Array, protector: KeyProtector, label: string): Promise<Buffer> {
  return seal(secret, protector, label, 'raw');
}

/**
 * Opens a raw secret sealed by {@link sealSecret}. The caller owns the returned buffer and
 * should `zero()` it when done.
 * @throws FleetkeyError KEY_FILE_CORRUPT | KEY_FILE_WRONG_PURPOSE | KEY_FILE_UNSUPPORTED
 */
export function openSecret(bytes: Uint8Array, protector: KeyProtector, label: string): Promise<Buffer> {
  return open(bytes, protector, label, 'raw');
}

/** Seals a PKCS#8 DER private key. */
export function sealPrivateKey(pkcs8Der: Uint8Array, protector: KeyProtector, label: string): Promise<Buffer> {
  return seal(pkcs8Der, protector, label, 'pkcs8');
}

/**
 * Opens a sealed PKCS#8 key into a KeyObject; the intermediate DER is zeroed.
 * @throws FleetkeyError KEY_FILE_CORRUPT | KEY_FILE_WRONG_PURPOSE | KEY_FILE_UNSUPPORTED
 */
export async function openPrivateKey(bytes: Uint8Array, protector: KeyProtector, label: string): Promise<KeyObject> {
  const der = await open(bytes, protector, label, 'pkcs8');
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch (cause) {
    // Authentic but unparsable: written by a buggy producer, not tampered with.
    throw new FleetkeyError('KEY_FILE_CORRUPT', { detail: `envelope ${label}: PKCS#8 does not parse`, cause });
  } finally {
    zero(der);
  }
}
