import { randomBytes, scrypt as scryptCb, type ScryptOptions } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import { hkdfSha256 } from '../primitives/hmac-hkdf.js';
import { zero } from '../primitives/bytes.js';
import { SCRYPT_MAX_N, SCRYPT_MIN_N, type KdfParams } from './envelope-format.js';

/**
 * What protects an envelope:
 * - `master`: the server's 32-byte master key (file or environment);
 * - `machine`: a 32-byte secret bound to one device (e.g. unsealed from its TPM);
 * - `passphrase`: a human secret stretched with scrypt (devices without a TPM, offline exports).
 */
export type KeyProtector =
  | { kind: 'master'; key: Uint8Array }
  | { kind: 'machine'; secret: Uint8Array }
  | { kind: 'passphrase'; passphrase: string | Uint8Array; scrypt?: { N?: number; r?: number; p?: number } };

const SALT_BYTES = 32;

function scryptAsync(pw: Uint8Array, salt: Uint8Array, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(pw, salt, 32, opts, (err, key) => (err === null ? resolve(key) : reject(err)));
  });
}

function passphraseBytes(p: string | Uint8Array): Buffer {
  // NFC so the same passphrase typed on two systems derives the same key (RFC 8265 §4.1 spirit).
  const bytes = typeof p === 'string' ? Buffer.from(p.normalize('NFC'), 'utf8') : Buffer.from(p);
  if (bytes.length === 0) throw new TypeError('empty passphrase');
  return bytes;
}

function secretOf(p: KeyProtector): Uint8Array {
  if (p.kind === 'master') return p.key;
  if (p.kind === 'machine') return p.secret;
  throw new TypeError('not an HKDF protector');
}

/** Fresh KDF parameters for sealing under `p`. */
export function newKdfParams(p: KeyProtector): KdfParams {
  const salt = randomBytes(SALT_BYTES);
  if (p.kind === 'passphrase') {
    const N = p.scrypt?.N ?? SCRYPT_MIN_N;
    if (!Number.isInteger(N) || N < SCRYPT_MIN_N || N > SCRYPT_MAX_N || (N & (N - 1)) !== 0) {
      throw new RangeError(`scrypt N must be a power of two in 2^15..2^20`);
    }
    return { name: 'scrypt', N, r: p.scrypt?.r ?? 8, p: p.scrypt?.p ?? 1, salt };
  }
  return { name: 'hkdf-sha256', secret: p.kind, salt };
}

/**
 * Derives the per-envelope AES key. The master key never encrypts directly: a per-file HKDF
 * with a random salt keeps each AES key to one message, so random-nonce limits (SP 800-38D
 * §8.3) never come into play however many envelopes a master key protects.
 * The caller zeroes the result.
 */
export async function deriveEnvelopeKey(p: KeyProtector, kdf: KdfParams): Promise<Buffer> {
  if (kdf.name === 'scrypt') {
    if (p.kind !== 'passphrase') throw new FleetkeyError('KEY_FILE_UNSUPPORTED', { detail: 'envelope needs a passphrase' });
    const pw = passphraseBytes(p.passphrase);
    try {
      // Node refuses when 128*N*r exceeds maxmem (default 32 MiB, exactly 2^15 * 8 * 128).
      return await scryptAsync(pw, kdf.salt, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 256 * kdf.N * kdf.r });
    } finally {
      zero(pw);
    }
  }
  if (p.kind !== kdf.secret) {
    throw new FleetkeyError('KEY_FILE_UNSUPPORTED', { detail: `envelope needs a ${kdf.secret} secret, got ${p.kind}` });
  }
  const secret = secretOf(p);
  if (secret.length !== 32) throw new FleetkeyError('MASTER_KEY_INVALID', { detail: `${p.kind} secret must be 32 bytes` });
  return hkdfSha256(secret, kdf.salt, `fleetkey-envelope/v1 ${kdf.secret}`, 32);
}
