import type { KeyObject } from 'node:crypto';
import { openPrivateKey, sealPrivateKey } from './envelope.js';
import type { KeyProtector } from './protector.js';
import { readSecretFile, writeSecretFile } from './secure-fs.js';

export interface WriteKeyFileOptions {
  /** Replace an existing file (atomically). Default false: an existing key is never clobbered. */
  overwrite?: boolean;
}

/**
 * Writes a PKCS#8 private key encrypted under the 32-byte master key, mode 0600, atomically.
 * `label` names the key's purpose (e.g. `ca/issuing`) and is bound into the AAD.
 * @throws FleetkeyError KEY_FILE_EXISTS | MASTER_KEY_INVALID
 * @example await writeEncryptedKeyFile('/var/lib/fleetkey/ca.key', der, masterKey, 'ca/issuing')
 */
export async function writeEncryptedKeyFile(
  path: string,
  pkcs8Der: Uint8Array,
  masterKey: Uint8Array,
  label: string,
  options: WriteKeyFileOptions = {},
): Promise<void> {
  await writeProtectedKeyFile(path, pkcs8Der, { kind: 'master', key: masterKey }, label, options);
}

/**
 * Reads a key file written by {@link writeEncryptedKeyFile}.
 * @throws FleetkeyError KEY_FILE_NOT_FOUND | KEY_FILE_PERMISSIONS | KEY_FILE_CORRUPT |
 *   KEY_FILE_WRONG_PURPOSE | KEY_FILE_UNSUPPORTED | MASTER_KEY_INVALID
 */
export function readEncryptedKeyFile(path: string, masterKey: Uint8Array, label: string): Promise<KeyObject> {
  return readProtectedKeyFile(path, { kind: 'master', key: masterKey }, label);
}

/** As {@link writeEncryptedKeyFile} with any protector: master key, machine secret or passphrase (scrypt). */
export async function writeProtectedKeyFile(
  path: string,
  pkcs8Der: Uint8Array,
  protector: KeyProtector,
  label: string,
  options: WriteKeyFileOptions = {},
): Promise<void> {
  const bytes = await sealPrivateKey(pkcs8Der, protector, label);
  await writeSecretFile(path, bytes, options);
}

/** As {@link readEncryptedKeyFile} with any protector. */
export async function readProtectedKeyFile(path: string, protector: KeyProtector, label: string): Promise<KeyObject> {
  const bytes = await readSecretFile(path);
  return openPrivateKey(bytes, protector, label);
}
