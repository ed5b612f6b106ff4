import { constants, type Stats } from 'node:fs';
import { chmod, link, mkdir, open, rename, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { FleetkeyError } from '@fleetkey/protocol';

/** Key files are a few KiB; anything far larger is not one of ours. */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

function errno(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

/**
 * Same rule as OpenSSH for private keys: no bits for group or others, a regular file, owned by
 * us (or root). Checked on the open descriptor (fstat), so the file inspected is the file read.
 */
function checkStats(path: string, st: Stats): void {
  if (!st.isFile()) throw new FleetkeyError('KEY_FILE_PERMISSIONS', { detail: `${path} is not a regular file` });
  if ((st.mode & 0o077) !== 0) {
    throw new FleetkeyError('KEY_FILE_PERMISSIONS', {
      detail: `${path} has mode ${(st.mode & 0o777).toString(8)}; expected 600 or stricter`,
    });
  }
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid && st.uid !== 0) {
    throw new FleetkeyError('KEY_FILE_PERMISSIONS', { detail: `${path} is owned by uid ${st.uid}, not ${uid}` });
  }
}

/**
 * Reads a secret file after checking its permissions. O_NOFOLLOW: a symlink planted in place
 * of a key file is refused rather than followed.
 * @throws FleetkeyError KEY_FILE_NOT_FOUND | KEY_FILE_PERMISSIONS | KEY_FILE_CORRUPT
 */
export async function readSecretFile(path: string): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = errno(e);
    if (code === 'ENOENT') throw new FleetkeyError('KEY_FILE_NOT_FOUND', { detail: path, cause: e });
    if (code === 'ELOOP') throw new FleetkeyError('KEY_FILE_PERMISSIONS', { detail: `${path} is a symlink`, cause: e });
    throw new FleetkeyError('KEY_FILE_PERMISSIONS', { detail: `${path}: ${String(code)}`, cause: e });
  }
  try {
    const st = await fh.stat();
    checkStats(path, st);
    if (st.size > MAX_SECRET_FILE_BYTES) throw new FleetkeyError('KEY_FILE_CORRUPT', { detail: `${path} is too large` });
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/**
 * Creates `dir` and any missing parents 0700 whatever the umask (mkdir's mode passes through
 * it). Only what this call created is chmod-ed: an existing directory is the caller's to judge.
 */
export async function makePrivateDir(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: 0o700 });
  if (first === undefined) return;
  for (let d = dir; ; d = dirname(d)) {
    await chmod(d, 0o700);
    if (d === first || d === dirname(d)) return;
  }
}

/**
 * Writes a secret file atomically with mode 0600: temp file in the same directory (same
 * filesystem, so the final step is atomic), fsync, then link/rename into place, then fsync the
 * directory so the new name survives a crash. A reader sees the old file or the new one, never
 * half of one. Without `overwrite`, an existing file is kept and KEY_FILE_EXISTS thrown:
 * link(2) fails atomically with EEXIST, so two racing creators cannot both win.
 */
export async function writeSecretFile(path: string, data: Uint8Array, options: { overwrite?: boolean } = {}): Promise<void> {
  const dir = dirname(path);
  await makePrivateDir(dir);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    try {
      await fh.chmod(0o600); // the umask can only clear bits, but be explicit about the result
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (options.overwrite === true) {
      await rename(tmp, path);
    } else {
      try {
        await link(tmp, path);
      } catch (e) {
        if (errno(e) === 'EEXIST') throw new FleetkeyError('KEY_FILE_EXISTS', { detail: path, cause: e });
        throw e;
      }
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  const d = await open(dir, constants.O_RDONLY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
