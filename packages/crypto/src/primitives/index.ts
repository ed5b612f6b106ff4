export { hmacSha256, hkdfSha256 } from './hmac-hkdf.js';
export { aes256GcmEncrypt, aes256GcmDecrypt, AES_GCM_NONCE_BYTES, AES_GCM_TAG_BYTES } from './aes-gcm.js';
export { timingSafeEqualBytes, zero, secretBuffer, randomSecret } from './bytes.js';
export { p1363ToDer } from './ecdsa-sig.js';
