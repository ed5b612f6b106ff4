import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';

export const AES_GCM_NONCE_BYTES = 12;
export const AES_GCM_TAG_BYTES = 16;
const KEY_BYTES = 32;

function checkKey(key: Uint8Array): void {
  if (key.length !== KEY_BYTES) throw new RangeError('AES-256-GCM needs a 32-byte key');
}

/**
 * AES-256-GCM encryption with a fresh random 96-bit nonce (NIST SP 800-38D §8.2.2: random
 * nonces are safe for up to 2^32 messages per key; callers that may exceed that derive a
 * per-object key first, as key files do). Returns the sealed box `nonce || ciphertext || tag`
 * (tag 128 bits). There is deliberately no way to pass a nonce in: reuse under GCM leaks the
 * authentication key.
 */
export function aes256GcmEncrypt(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array = Buffer.alloc(0)): Buffer {
  checkKey(key);
  const nonce = randomBytes(AES_GCM_NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: AES_GCM_TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, ciphertext, cipher.getAuthTag()]);
}

/**
 * Plaintexts up to this size (key files, sealed secrets) are decrypted {@link PIECE_BYTES} at a
 * time. Node's `Decipher.update` writes into a buffer one block larger than its input, copies the
 * result into an exact-size one and frees the first without wiping it, so a whole-buffer update
 * leaves a copy of the plaintext in the process's malloc heap (measured: a PKCS#8 key's scalar
 * was found in freed memory of 15 of 15 processes). A freed piece of 8 bytes is overwritten by
 * the allocator's own free-list pointer (glibc writes at least 8 bytes at the start of a freed
 * chunk), so nothing of it survives. Larger plaintexts (the device's offline log records:
 * telemetry, not keys) are decrypted whole.
 */
const PIECEWISE_MAX_BYTES = 4096;
const PIECE_BYTES = 8;

/**
 * Opens a sealed box from {@link aes256GcmEncrypt}. Any change to nonce, ciphertext, tag or AAD
 * is refused; no plaintext is released before the tag has been checked.
 * @throws FleetkeyError DECRYPT_FAILED
 */
export function aes256GcmDecrypt(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array = Buffer.alloc(0)): Buffer {
  checkKey(key);
  if (sealed.length < AES_GCM_NONCE_BYTES + AES_GCM_TAG_BYTES) {
    throw new FleetkeyError('DECRYPT_FAILED', { detail: 'sealed box shorter than nonce + tag' });
  }
  const nonce = sealed.subarray(0, AES_GCM_NONCE_BYTES);
  const tag = sealed.subarray(sealed.length - AES_GCM_TAG_BYTES);
  const ciphertext = sealed.subarray(AES_GCM_NONCE_BYTES, sealed.length - AES_GCM_TAG_BYTES);
  // authTagLength pins the tag size: without it Node would accept a truncated tag (CVE-class
  // forgery with 4-byte tags).
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: AES_GCM_TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const pieces: Buffer[] = [];
  const step = ciphertext.length <= PIECEWISE_MAX_BYTES ? PIECE_BYTES : ciphertext.length;
  try {
    for (let at = 0; at < ciphertext.length; at += step) pieces.push(decipher.update(ciphertext.subarray(at, at + step)));
    pieces.push(decipher.final());
    if (pieces.length === 2 && pieces[1]!.length === 0) return pieces[0]!;
    return Buffer.concat(pieces);
  } catch (cause) {
    throw new FleetkeyError('DECRYPT_FAILED', { detail: 'AES-256-GCM tag mismatch', cause });
  } finally {
    if (pieces.length !== 2 || pieces[1]!.length !== 0) for (const p of pieces) p.fill(0);
  }
}
