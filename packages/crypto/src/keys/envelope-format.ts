/**
 * The versioned envelope every Fleetkey secret at rest uses (key files, root-key exports,
 * envelope-encrypted database columns). JSON, one object:
 *
 *   {
 *     "format":  "fleetkey-envelope",
 *     "version": 1,
 *     "label":   "ca/issuing",                      // purpose; also bound into the AAD
 *     "content": "pkcs8" | "raw",                   // what the plaintext is
 *     "kdf":     { "name": "hkdf-sha256", "secret": "master" | "machine", "salt": b64(32) }
 *              | { "name": "scrypt", "N": 32768, "r": 8, "p": 1, "salt": b64(32) },
 *     "cipher":  "aes-256-gcm",
 *     "sealed":  b64(nonce(12) || ciphertext || tag(16))
 *   }
 *
 * The AAD is a canonical string over version, the *expected* label, content and every KDF
 * parameter, so a file cannot be moved to another purpose, a raw secret cannot be opened as a
 * key, and KDF parameters cannot be downgraded without the tag failing.
 */
import { FleetkeyError } from '@fleetkey/protocol';

export const ENVELOPE_FORMAT = 'fleetkey-envelope';
export const ENVELOPE_VERSION = 1;
/** Labels are ASCII and exclude the AAD's separators, so two labels never share an AAD. */
export const LABEL_PATTERN = /^[A-Za-z0-9._:/@-]{1,128}$/;
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export type EnvelopeContent = 'pkcs8' | 'raw';
export type HkdfParams = { name: 'hkdf-sha256'; secret: 'master' | 'machine'; salt: Buffer };
export type ScryptParams = { name: 'scrypt'; N: number; r: number; p: number; salt: Buffer };
export type KdfParams = HkdfParams | ScryptParams;

export interface Envelope {
  label: string;
  content: EnvelopeContent;
  kdf: KdfParams;
  sealed: Buffer;
}

/**
 * Bounds on stored scrypt parameters. The floor is the device minimum (RFC 7914 §2 leaves the
 * choice to us; 2^15 is the OWASP 2023 floor for r=8); the ceiling stops a planted file from
 * making us allocate gigabytes.
 */
export const SCRYPT_MIN_N = 2 ** 15;
export const SCRYPT_MAX_N = 2 ** 20;

export function checkLabel(label: string): void {
  if (!LABEL_PATTERN.test(label)) throw new TypeError('key label must match [A-Za-z0-9._:/@-]{1,128}');
}

export function aadFor(label: string, content: EnvelopeContent, kdf: KdfParams): Buffer {
  const kdfPart =
    kdf.name === 'scrypt'
      ? `scrypt;N=${kdf.N};r=${kdf.r};p=${kdf.p};salt=${kdf.salt.toString('base64')}`
      : `hkdf-sha256;secret=${kdf.secret};salt=${kdf.salt.toString('base64')}`;
  return Buffer.from(`${ENVELOPE_FORMAT}|v${ENVELOPE_VERSION}|label=${label}|content=${content}|kdf=${kdfPart}|aes-256-gcm`, 'utf8');
}

export function encodeEnvelope(e: Envelope): Buffer {
  const kdf =
    e.kdf.name === 'scrypt'
      ? { name: e.kdf.name, N: e.kdf.N, r: e.kdf.r, p: e.kdf.p, salt: e.kdf.salt.toString('base64') }
      : { name: e.kdf.name, secret: e.kdf.secret, salt: e.kdf.salt.toString('base64') };
  const doc = {
    format: ENVELOPE_FORMAT,
    version: ENVELOPE_VERSION,
    label: e.label,
    content: e.content,
    kdf,
    cipher: 'aes-256-gcm',
    sealed: e.sealed.toString('base64'),
  };
  return Buffer.from(`${JSON.stringify(doc, null, 2)}\n`, 'utf8');
}

const corrupt = (detail: string): FleetkeyError => new FleetkeyError('KEY_FILE_CORRUPT', { detail });
const unsupported = (detail: string): FleetkeyError => new FleetkeyError('KEY_FILE_UNSUPPORTED', { detail });

function b64(v: unknown, what: string): Buffer {
  if (typeof v !== 'string' || !B64.test(v)) throw corrupt(`${what} is not base64`);
  return Buffer.from(v, 'base64');
}

function intIn(v: unknown, lo: number, hi: number, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw unsupported(`${what} out of range`);
  return v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Strict parse: unknown versions and parameters outside our bounds are refused, not guessed. */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw corrupt('not JSON');
  }
  if (!isRecord(doc) || doc['format'] !== ENVELOPE_FORMAT) throw corrupt('not a fleetkey envelope');
  if (doc['version'] !== ENVELOPE_VERSION) throw unsupported(`envelope version ${String(doc['version'])}`);
  if (doc['cipher'] !== 'aes-256-gcm') throw unsupported('cipher');
  const label = doc['label'];
  if (typeof label !== 'string' || !LABEL_PATTERN.test(label)) throw corrupt('label');
  const content = doc['content'];
  if (content !== 'pkcs8' && content !== 'raw') throw unsupported('content type');
  const k = doc['kdf'];
  if (!isRecord(k)) throw corrupt('kdf');
  let kdf: KdfParams;
  if (k['name'] === 'scrypt') {
    const N = intIn(k['N'], SCRYPT_MIN_N, SCRYPT_MAX_N, 'scrypt N');
    if ((N & (N - 1)) !== 0) throw unsupported('scrypt N not a power of two');
    kdf = { name: 'scrypt', N, r: intIn(k['r'], 8, 16, 'scrypt r'), p: intIn(k['p'], 1, 4, 'scrypt p'), salt: b64(k['salt'], 'salt') };
  } else if (k['name'] === 'hkdf-sha256') {
    const secret = k['secret'];
    if (secret !== 'master' && secret !== 'machine') throw unsupported('hkdf secret kind');
    kdf = { name: 'hkdf-sha256', secret, salt: b64(k['salt'], 'salt') };
  } else {
    throw unsupported('kdf');
  }
  if (kdf.salt.length < 16) throw corrupt('salt too short');
  const sealed = b64(doc['sealed'], 'sealed');
  return { label, content, kdf, sealed };
}
