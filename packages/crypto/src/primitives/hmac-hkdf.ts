import { createHmac } from 'node:crypto';
import { secretBuffer } from './bytes.js';

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
  // Built on HMAC rather than crypto.hkdfSync: hkdfSync turns the IKM into a secret KeyObject
  // whose native copy of the key lives until the garbage collector finalises it, and a JS
  // caller cannot destroy a KeyObject. Here the IKM is only ever HMAC *data* (read in place,
  // never copied), and the PRK and every T(i) are Buffers we zero.
  // RFC 5869 §2.2 extract: PRK = HMAC-Hash(salt, IKM); an empty salt is HashLen zeros.
  const prk = createHmac('sha256', salt.length === 0 ? Buffer.alloc(32) : salt).update(ikm).digest();
  const okm = secretBuffer(Math.ceil(length / 32) * 32);
  let t: Buffer = Buffer.alloc(0);
  try {
    // §2.3 expand: T(i) = HMAC-Hash(PRK, T(i-1) | info | i), OKM = first L octets of T(1) | T(2) | ...
    for (let i = 1; (i - 1) * 32 < length; i++) {
      const next = createHmac('sha256', prk).update(t).update(infoBytes).update(Buffer.of(i)).digest();
      t.fill(0);
      t = next;
      t.copy(okm, (i - 1) * 32);
    }
    // Off the V8 heap (never moved by the GC), not a slice of Buffer's shared pool; the caller zeroes it.
    const out = secretBuffer(length);
    okm.copy(out, 0, 0, length);
    return out;
  } finally {
    prk.fill(0);
    t.fill(0);
    okm.fill(0);
  }
}
