import { createCipheriv, pbkdf2, randomBytes, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

/** PBKDF2 iterations: OWASP's 2023 figure for PBKDF2-HMAC-SHA256 (OpenSSL's own default is 2,048). */
export const PKCS8_PBKDF2_ITERATIONS = 600_000;

const len = (n: number): Buffer => (n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]));
const tlv = (tag: number, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
};
const seq = (...parts: Buffer[]): Buffer => tlv(0x30, ...parts);
const oid = (hex: string): Buffer => tlv(0x06, Buffer.from(hex, 'hex'));
const integer = (n: number): Buffer => {
  let hex = n.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  const b = Buffer.from(hex, 'hex');
  return tlv(0x02, b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
};

const PBES2 = oid('2a864886f70d01050d'); // 1.2.840.113549.1.5.13 (RFC 8018 §A.4)
const PBKDF2 = oid('2a864886f70d01050c'); // 1.2.840.113549.1.5.12 (RFC 8018 §A.2)
const HMAC_SHA256 = oid('2a864886f70d0209'); // 1.2.840.113549.2.9 (RFC 8018 §B.1.2)
const AES256_CBC = oid('60864801650304012a'); // 2.16.840.1.101.3.4.1.42 (RFC 3565 §4.1)

/**
 * A private key as an RFC 5958 EncryptedPrivateKeyInfo: PBES2 (RFC 8018 §6.2) with PBKDF2-HMAC-
 * SHA256 over a 16-byte random salt and AES-256-CBC. Node's own `export({ cipher })` fixes the
 * iteration count at OpenSSL's 2,048; this one takes 600,000, which OpenSSL, Python's
 * cryptography and Node all read.
 */
export async function encryptedPkcs8Pem(key: KeyObject, passphrase: Uint8Array, iterations = PKCS8_PBKDF2_ITERATIONS): Promise<string> {
  const plain = key.export({ type: 'pkcs8', format: 'der' });
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const dk = await pbkdf2Async(passphrase, salt, iterations, 32, 'sha256');
  try {
    const cipher = createCipheriv('aes-256-cbc', dk, iv);
    const encrypted = Buffer.concat([cipher.update(plain), cipher.final()]);
    const algorithm = seq(PBES2, seq(seq(PBKDF2, seq(tlv(0x04, salt), integer(iterations), seq(HMAC_SHA256, Buffer.from([0x05, 0x00])))), seq(AES256_CBC, tlv(0x04, iv))));
    const der = seq(algorithm, tlv(0x04, encrypted));
    const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
    return `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ENCRYPTED PRIVATE KEY-----\n`;
  } finally {
    plain.fill(0);
    dk.fill(0);
  }
}
