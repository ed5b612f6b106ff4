import { join } from 'node:path';
import { loadOrCreateMasterKey, makePrivateDir, masterKeyFromEnv, writeSecretFile as writeSecret } from '@fleetkey/crypto';
import { assertDataDirPrivate } from './secret-files.js';

export const MASTER_KEY_FILE = 'master.key';
export const ADMIN_TOKEN_FILE = 'admin.token';
export const SERVER_INFO_FILE = 'server.json';
export const SQLITE_FILE = 'fleetkey.db';

/**
 * Creates the data directory on first start, 0700 whatever the umask, then refuses to go on if
 * it or anything in it is open to others. An existing directory is never chmod-ed: a 0755 data
 * dir may already have leaked its secrets.
 * @throws FleetkeyError SECRET_FILE_EXPOSED
 */
export async function ensureDataDir(dir: string): Promise<void> {
  await makePrivateDir(dir);
  assertDataDirPrivate(dir);
}

/** Replaces a 0600 file atomically (never briefly readable by others). */
export async function writeSecretFile(path: string, content: string): Promise<void> {
  await writeSecret(path, Buffer.from(content, 'utf8'), { overwrite: true });
}

/**
 * The master key that seals secrets at rest: 32 bytes from the CSPRNG, base64 in a 0600 file
 * (created on first start). `FLEETKEY_MASTER_KEY` (base64) replaces the file for deployments
 * that inject it.
 */
export async function masterKey(dir: string, env: NodeJS.ProcessEnv = process.env): Promise<Buffer> {
  const fromEnv = env['FLEETKEY_MASTER_KEY'];
  if (fromEnv !== undefined && fromEnv !== '') return masterKeyFromEnv(fromEnv);
  return (await loadOrCreateMasterKey(join(dir, MASTER_KEY_FILE))).key;
}
