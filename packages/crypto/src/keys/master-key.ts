import { randomBytes } from 'node:crypto';
import { FleetkeyError, isFleetkeyError } from '@fleetkey/protocol';
import { zero } from '../primitives/bytes.js';
import { readSecretFile, writeSecretFile } from './secure-fs.js';

const MASTER_KEY_BYTES = 32;
const CANONICAL_B64_32 = /^[A-Za-z0-9+/]{43}=$/;

/**
 * Parses a master key given as base64 (the form in both the key file and the environment).
 * Strict: exactly 32 bytes in canonical padded base64, surrounding whitespace ignored, so a
 * truncated or mistyped value fails at boot instead of deriving a different key.
 * @throws FleetkeyError MASTER_KEY_INVALID
 */
export function parseMasterKey(text: string | undefined): Buffer {
  const t = (text ?? '').trim();
  if (!CANONICAL_B64_32.test(t)) {
    throw new FleetkeyError('MASTER_KEY_INVALID', { detail: 'expected 32 bytes, base64 with padding' });
  }
  const key = Buffer.from(t, 'base64');
  // The last character of 43+"=" may carry non-zero padding bits; re-encoding catches that.
  if (key.length !== MASTER_KEY_BYTES || key.toString('base64') !== t) {
    zero(key);
    throw new FleetkeyError('MASTER_KEY_INVALID', { detail: 'non-canonical base64' });
  }
  return key;
}

/**
 * Master key from an environment variable's value (e.g. `process.env.FLEETKEY_MASTER_KEY`).
 * @throws FleetkeyError MASTER_KEY_INVALID when unset, empty or malformed
 */
export function masterKeyFromEnv(value: string | undefined): Buffer {
  if (value === undefined || value.trim() === '') {
    throw new FleetkeyError('MASTER_KEY_INVALID', { detail: 'master key variable is unset or empty' });
  }
  return parseMasterKey(value);
}

/**
 * Loads the master key file, or creates it (32 random bytes, base64, mode 0600) when absent.
 * `created` lets the caller log "new master key: back it up". Concurrent first starts are safe:
 * creation is exclusive and the loser reads the winner's key.
 * @throws FleetkeyError KEY_FILE_PERMISSIONS (group/other bits set) | MASTER_KEY_INVALID
 */
export async function loadOrCreateMasterKey(path: string): Promise<{ key: Buffer; created: boolean }> {
  try {
    return { key: await loadMasterKeyFile(path), created: false };
  } catch (e) {
    if (!isFleetkeyError(e) || e.code !== 'KEY_FILE_NOT_FOUND') throw e;
  }
  const key = randomBytes(MASTER_KEY_BYTES);
  const text = Buffer.from(`${key.toString('base64')}\n`, 'utf8');
  try {
    await writeSecretFile(path, text);
    return { key, created: true };
  } catch (e) {
    zero(key);
    if (isFleetkeyError(e) && e.code === 'KEY_FILE_EXISTS') return { key: await loadMasterKeyFile(path), created: false };
    throw e;
  } finally {
    zero(text);
  }
}

async function loadMasterKeyFile(path: string): Promise<Buffer> {
  const bytes = await readSecretFile(path);
  try {
    return parseMasterKey(bytes.toString('utf8'));
  } finally {
    zero(bytes);
  }
}
