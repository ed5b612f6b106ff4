import type { KeyObject } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import { zero } from '../primitives/bytes.js';
import { openPrivateKey, sealPrivateKey } from './envelope.js';

const BEGIN = '-----BEGIN FLEETKEY ENCRYPTED PRIVATE KEY-----';
const END = '-----END FLEETKEY ENCRYPTED PRIVATE KEY-----';
/** An offline root is decrypted rarely, by a person: spend more (2^17 × r=8 = 128 MiB, ~0.5 s). */
export const ROOT_EXPORT_SCRYPT_N = 2 ** 17;
export const ROOT_EXPORT_MIN_PASSPHRASE = 12;
const DEFAULT_LABEL = 'root-ca-export';

export interface RootExportOptions {
  /** Purpose bound into the AAD; the importer must name the same one. Default `root-ca-export`. */
  label?: string;
  /** scrypt cost; at least 2^15. Default 2^17. */
  scryptN?: number;
}

/**
 * Exports a private key (the root CA's) as armored text encrypted with a passphrase (scrypt +
 * AES-256-GCM, the envelope format of key files), so the root can be taken offline and
 * re-imported for a ceremony. Not PKCS#8 PBES2: OpenSSL's default there is PBKDF2 with 2048
 * iterations and CBC without authentication.
 * @throws RangeError when the passphrase is shorter than 12 characters
 */
export async function exportRootKey(privateKey: KeyObject, passphrase: string, options: RootExportOptions = {}): Promise<string> {
  if (privateKey.type !== 'private') throw new TypeError('exportRootKey needs a private key');
  if ([...passphrase.normalize('NFC')].length < ROOT_EXPORT_MIN_PASSPHRASE) {
    throw new RangeError(`passphrase must have at least ${ROOT_EXPORT_MIN_PASSPHRASE} characters`);
  }
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  try {
    const env = await sealPrivateKey(
      der,
      { kind: 'passphrase', passphrase, scrypt: { N: options.scryptN ?? ROOT_EXPORT_SCRYPT_N } },
      options.label ?? DEFAULT_LABEL,
    );
    const lines = env.toString('base64').match(/.{1,64}/g) ?? [];
    return `${BEGIN}\n${lines.join('\n')}\n${END}\n`;
  } finally {
    zero(der);
  }
}

/**
 * Imports a key exported by {@link exportRootKey}.
 * @throws FleetkeyError KEY_FILE_CORRUPT (wrong passphrase or tampered) | KEY_FILE_WRONG_PURPOSE |
 *   KEY_FILE_UNSUPPORTED
 */
export async function importRootKey(armored: string, passphrase: string, options: { label?: string } = {}): Promise<KeyObject> {
  const text = armored.trim();
  if (!text.startsWith(BEGIN) || !text.endsWith(END)) {
    throw new FleetkeyError('KEY_FILE_CORRUPT', { detail: 'missing armor lines' });
  }
  const body = text.slice(BEGIN.length, text.length - END.length).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new FleetkeyError('KEY_FILE_CORRUPT', { detail: 'armor body is not base64' });
  return openPrivateKey(Buffer.from(body, 'base64'), { kind: 'passphrase', passphrase }, options.label ?? DEFAULT_LABEL);
}
