import { constants } from 'node:fs';
import { lstat, mkdir, open } from 'node:fs/promises';
import { FleetkeyError } from '@fleetkey/protocol';

/**
 * Same rule as for the secret files inside (OpenSSH's for ~/.ssh): a real directory, not a
 * symlink, owned by us or root, with no group/other bits, so nobody else can plant, swap or
 * list the files. Checked again before each use: a directory loosened at run time is noticed.
 * @throws FleetkeyError KEY_FILE_PERMISSIONS
 */
export async function checkSecureDir(dir: string): Promise<void> {
  const st = await lstat(dir);
  if (!st.isDirectory()) throw new FleetkeyError('KEY_FILE_PERMISSIONS', { detail: `${dir} is not a directory` });
  if ((st.mode & 0o077) !== 0) {
    throw new FleetkeyError('KEY_FILE_PERMISSIONS', { detail: `${dir} has mode ${(st.mode & 0o777).toString(8)}; expected 700` });
  }
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid && st.uid !== 0) {
    throw new FleetkeyError('KEY_FILE_PERMISSIONS', { detail: `${dir} is owned by uid ${st.uid}` });
  }
}

/** Creates `dir` 0700 when missing (never loosening an existing one), then checks it. */
export async function ensureSecureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await checkSecureDir(dir);
}

/** fsync of a directory so a created, renamed or removed name survives a crash (POSIX fsync(2)). */
export async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, constants.O_RDONLY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
