import { readdirSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { FleetkeyError } from '@fleetkey/protocol';

/**
 * Files in the data dir that are public by design: CA and TLS certificates. Others may read
 * them; nobody but us may write them (a swapped bundle would change what the CLI trusts).
 */
const isPublic = (name: string): boolean => name === 'ca-bundle.pem' || name.endsWith('.crt');

function refuse(path: string, why: string, fix: string): never {
  throw new FleetkeyError('SECRET_FILE_EXPOSED', { detail: `${path} ${why}; refusing to start (fix: ${fix})` });
}

/**
 * The OpenSSH rule for private keys, on every secret the server keeps: owned by the user running
 * the server, no permission bits for group or others. Nothing is chmod-ed here: a file found open
 * may already have been read or replaced, so the operator has to look at it (issue 10 item 6).
 */
function check(path: string, st: Stats, kind: 'secret' | 'public'): void {
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) refuse(path, `is owned by uid ${st.uid}, not by uid ${uid} running the server`, `chown ${uid} ${path}`);
  const mode = st.mode & 0o777;
  const octal = mode.toString(8).padStart(3, '0');
  if (st.isDirectory()) {
    if ((mode & 0o077) !== 0) refuse(path, `has mode ${octal}: group or others can list or change it`, `chmod 700 ${path}`);
    return;
  }
  if (kind === 'public') {
    if ((mode & 0o022) !== 0) refuse(path, `has mode ${octal}: group or others can change it`, `chmod 644 ${path}`);
    return;
  }
  if ((mode & 0o077) !== 0) refuse(path, `has mode ${octal}: group or others can read or change it`, `chmod 600 ${path}`);
}

/** Checks one secret file outside the data dir (config file, PKCS#11 PIN file); a missing file is left to its reader. */
export function assertPrivateFile(path: string): void {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    if ((e as { code?: unknown }).code === 'ENOENT') return;
    throw e;
  }
  check(path, st, 'secret');
}

/**
 * Checks the data dir and everything under it: the directory and its subdirectories 0700,
 * every file 0600 (master.key, admin.token, the SQLite database and its -wal/-shm, CA and TLS
 * keys, server.json), certificates not writable by others; all owned by us. Symbolic links are
 * judged by what they point at.
 * @throws FleetkeyError SECRET_FILE_EXPOSED naming the path, its mode and the command that fixes it
 */
export function assertDataDirPrivate(dir: string): void {
  check(dir, statSync(dir), 'secret');
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    const st = statSync(path);
    if (st.isDirectory()) assertDataDirPrivate(path);
    else check(path, st, isPublic(e.name) ? 'public' : 'secret');
  }
}
