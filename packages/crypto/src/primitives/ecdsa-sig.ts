/**
 * Conversion between the two ECDSA signature encodings: IEEE P1363 `r || s` (what PKCS#11
 * CKM_ECDSA and WebCrypto return) and DER ECDSA-Sig-Value (RFC 3279 §2.2.3, what X.509 carries).
 */

function derInteger(bytes: Uint8Array): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const body = Buffer.from(bytes.subarray(i));
  // X.690 §8.3.2: minimal two's complement; a set high bit needs a 0x00 so the value stays positive.
  const pad = (body[0] ?? 0) & 0x80 ? Buffer.from([0]) : Buffer.alloc(0);
  return Buffer.concat([Buffer.from([0x02, body.length + pad.length]), pad, body]);
}

/** `r || s` (each `size` bytes) → DER SEQUENCE { INTEGER r, INTEGER s }. */
export function p1363ToDer(raw: Uint8Array): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0 || raw.length > 132) {
    throw new RangeError('P1363 signature must be r||s of equal, even length');
  }
  const half = raw.length / 2;
  const content = Buffer.concat([derInteger(raw.subarray(0, half)), derInteger(raw.subarray(half))]);
  // P-521 signatures reach 139 bytes of content: long-form length (X.690 §8.1.3.5).
  const len = content.length < 0x80 ? Buffer.from([content.length]) : Buffer.from([0x81, content.length]);
  return Buffer.concat([Buffer.from([0x30]), len, content]);
}
