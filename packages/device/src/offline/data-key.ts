import { join } from 'node:path';
import { isFleetkeyError } from '@fleetkey/protocol';
import { openSecret, randomSecret, readSecretFile, sealSecret, writeSecretFile, zero, type KeyProtector } from '@fleetkey/crypto';

export const DATA_KEY_FILE = 'offline.key';
const DATA_KEY_LABEL = 'device/offline-buffer';

/**
 * The buffer's 32-byte data key, kept in the standard Fleetkey envelope under the device's
 * KeyProtector (machine secret or passphrase), created on first use. Sealing a random data key,
 * rather than deriving from the protector directly, means a passphrase is stretched once per
 * open, not per record, and a passphrase change re-seals 32 bytes instead of the whole buffer.
 * The caller zeroes the returned buffer.
 * @throws FleetkeyError KEY_FILE_CORRUPT (wrong secret or tampered) | KEY_FILE_PERMISSIONS | ...
 */
export async function loadOrCreateDataKey(dir: string, protector: KeyProtector): Promise<Buffer> {
  const path = join(dir, DATA_KEY_FILE);
  try {
    return await openSecret(await readSecretFile(path), protector, DATA_KEY_LABEL);
  } catch (e) {
    if (!(isFleetkeyError(e) && e.code === 'KEY_FILE_NOT_FOUND')) throw e;
  }
  const key = randomSecret(32); // off the V8 heap: zero() reaches the only copy
  try {
    await writeSecretFile(path, await sealSecret(key, protector, DATA_KEY_LABEL));
    return key;
  } catch (e) {
    zero(key);
    // Another process created it first (link(2) is atomic): use theirs.
    if (isFleetkeyError(e) && e.code === 'KEY_FILE_EXISTS') return openSecret(await readSecretFile(path), protector, DATA_KEY_LABEL);
    throw e;
  }
}
