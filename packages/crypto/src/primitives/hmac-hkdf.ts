import { createHmac, hkdfSync } from 'node:crypto';

/** HMAC-SHA256 (RFC 2104) of `data` under `key`; 32 bytes. */
export function hmacSha256(key: Uint8Array, data: Uint8Array | string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

// RFC 5869 §2.3: L <= 255 * HashLen.
const HKDF_SHA256_MAX = 255 * 32;

/**
 * HKDF-SHA256 (RFC 5869) extract-and-expand. An empty salt means HashLen zero bytes (§2.2).
 * @throws RangeError when `length` is outside 1..8160.
 */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array | string, length: number): Buffer {
  if (!Number.isInteger(length) || length < 1 || length > HKDF_SHA256_MAX) {
    throw new RangeError(`HKDF-SHA256 output length must be 1..${HKDF_SHA256_MAX}`);
  }
  const infoBytes = typeof info === 'string' ? Buffer.from(info, 'utf8') : info;
  return Buffer.from(hkdfSync('sha256', ikm, salt, infoBytes, length));
}
