import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { FleetkeyError } from '@fleetkey/protocol';
import { assertNotWorldReadable } from './load-config.js';

export const MASTER_KEY_FILE = 'master.key';
export const ADMIN_TOKEN_FILE = 'admin.token';
export const SERVER_INFO_FILE = 'server.json';
export const SQLITE_FILE = 'fleetkey.db';

/** Creates the data directory (0700) on first start. */
export function ensureDataDir(dir: string): void {
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/**
 * Writes a secret file atomically with mode 0600 from its creation (never briefly readable):
 * open with O_EXCL on a temp name, write, rename over the target.
 */
export function writeSecretFile(path: string, content: string | Buffer): void {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, typeof content === 'string' ? Buffer.from(content, 'utf8') : content);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * The master key that seals secrets at rest: 32 bytes from the CSPRNG, base64 in a 0600 file.
 * `FLEETKEY_MASTER_KEY` (base64) overrides the file for deployments that inject it.
 */
export function loadOrCreateMasterKey(dir: string, env: NodeJS.ProcessEnv = process.env): Buffer {
  const fromEnv = env['FLEETKEY_MASTER_KEY'];
  if (fromEnv !== undefined && fromEnv !== '') {
    const key = Buffer.from(fromEnv, 'base64');
    if (key.length !== 32) throw new FleetkeyError('CONFIG_INVALID', { detail: 'FLEETKEY_MASTER_KEY must be 32 bytes, base64' });
    return key;
  }
  const path = join(dir, MASTER_KEY_FILE);
  if (!existsSync(path)) writeSecretFile(path, `${randomBytes(32).toString('base64')}\n`);
  assertNotWorldReadable(path);
  const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new FleetkeyError('CONFIG_INVALID', { detail: `${path} does not hold a 32-byte key` });
  return key;
}
