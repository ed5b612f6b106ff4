import { generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  openSecret,
  readEncryptedKeyFile,
  readProtectedKeyFile,
  sealSecret,
  writeEncryptedKeyFile,
  writeProtectedKeyFile,
} from '../src/keys/index.js';

let dir: string;
let n = 0;
const file = (): string => join(dir, `k${++n}.key`);
const master = randomBytes(32);
const { privateKey: ecKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pkcs8 = (k: KeyObject = ecKey): Buffer => k.export({ format: 'der', type: 'pkcs8' });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fk-keyfile-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function editJson(path: string, edit: (doc: Record<string, any>) => void): Promise<void> {
  const doc = JSON.parse(await readFile(path, 'utf8')) as Record<string, any>;
  edit(doc);
  await writeFile(path, JSON.stringify(doc), { mode: 0o600 });
}
const code = (c: string) => expect.objectContaining({ code: c });
const sameKey = (a: KeyObject, b: KeyObject): boolean => {
  const sig = sign('sha256', Buffer.from('m'), a);
  return verify('sha256', Buffer.from('m'), b, sig);
};

describe('encrypted key files (master key)', () => {
  it.each([0o640, 0o604, 0o660, 0o644, 0o606, 0o700 | 0o001])('fail: mode %o is refused with KEY_FILE_PERMISSIONS', async (mode) => {
    const p = file();
    await writeEncryptedKeyFile(p, pkcs8(), master, 'ca/issuing');
    await chmod(p, mode);
    await expect(readEncryptedKeyFile(p, master, 'ca/issuing')).rejects.toThrow(code('KEY_FILE_PERMISSIONS'));
  });

  it('fail: a symlink, a directory, a missing file', async () => {
    const p = file();
    await writeEncryptedKeyFile(p, pkcs8(), master, 'ca/issuing');
    const link = join(dir, 'link.key');
    await symlink(p, link);
    await expect(readEncryptedKeyFile(link, master, 'ca/issuing')).rejects.toThrow(code('KEY_FILE_PERMISSIONS'));
    const d = join(dir, 'adir');
    await mkdir(d, { mode: 0o700 });
    await expect(readEncryptedKeyFile(d, master, 'ca/issuing')).rejects.toThrow(code('KEY_FILE_PERMISSIONS'));
    await expect(readEncryptedKeyFile(join(dir, 'nope.key'), master, 'ca/issuing')).rejects.toThrow(code('KEY_FILE_NOT_FOUND'));
  });

  it.skipIf(process.getuid?.() !== 0)('fail: a file owned by another (non-root) user', async () => {
    const p = file();
    await writeEncryptedKeyFile(p, pkcs8(), master, 'ca/issuing');
    await chown(p, 65534, 65534);
    await expect(readEncryptedKeyFile(p, master, 'ca/issuing')).rejects.toThrow(code('KEY_FILE_PERMISSIONS'));
  });

  it('fail: every tampering is KEY_FILE_CORRUPT', async () => {
    const tamperings: Array<(d: Record<string, any>) => void> = [
      (d) => {
        const b = Buffer.from(d['sealed'], 'base64');
        b[20] = (b[20] ?? 0) ^ 1;
        d['sealed'] = b.toString('base64');
      },
      (d) => {
        const b = Buffer.from(d['sealed'], 'base64');
        d['sealed'] = b.subarray(0, b.length - 1).toString('base64');
      },
      (d) => {
        d['kdf'].salt = randomBytes(32).toString('base64');
      },
      (d) => {
        d['sealed'] = 'not base64!';
      },
    ];
    for (const t of tamperings) {
      const p = file();
      await writeEncryptedKeyFile(p, pkcs8(), master, 'ca/issuing');
      await editJson(p, t);
      await expect(readEncryptedKeyFile(p, master, 'ca/issuing')).rejects.toThrow(code('KEY_FILE_CORRUPT'));
    }
    const p = file();
    await writeFile(p, '{"format":"fleetkey-envelope"', { mode: 0o600 });
    await expect(readEncryptedKeyFile(p, master, 'ca/issuing')).rejects.toThrow(code('KEY_FILE_CORRUPT'));
  });

  it('fail: wrong master key → KEY_FILE_CORRUPT; a 16-byte master key → MASTER_KEY_INVALID', async () => {
    const p = file();
    await writeEncryptedKeyFile(p, pkcs8(), master, 'ca/issuing');
    await expect(readEncryptedKeyFile(p, randomBytes(32), 'ca/issuing')).rejects.toThrow(code('KEY_FILE_CORRUPT'));
    await expect(readEncryptedKeyFile(p, randomBytes(16), 'ca/issuing')).rejects.toThrow(code('MASTER_KEY_INVALID'));
    await expect(writeEncryptedKeyFile(file(), pkcs8(), randomBytes(16), 'x')).rejects.toThrow(code('MASTER_KEY_INVALID'));
  });

  it('fail: a file swapped in for another purpose is refused, even with its label edited', async () => {
    const issuing = file();
    const webhook = file();
    await writeEncryptedKeyFile(issuing, pkcs8(), master, 'ca/issuing');
    await writeEncryptedKeyFile(webhook, pkcs8(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey), master, 'webhook/signing');
    await expect(readEncryptedKeyFile(webhook, master, 'ca/issuing')).rejects.toThrow(code('KEY_FILE_WRONG_PURPOSE'));
    await editJson(webhook, (d) => {
      d['label'] = 'ca/issuing';
    });
    // The AAD is computed from the label the reader expects: the tag no longer matches.
    await expect(readEncryptedKeyFile(webhook, master, 'ca/issuing')).rejects.toThrow(code('KEY_FILE_CORRUPT'));
    // A raw secret (group key) envelope cannot be opened as a private key, nor the reverse.
    const raw = file();
    await writeFile(raw, await sealSecret(randomBytes(32), { kind: 'master', key: master }, 'ca/issuing'), { mode: 0o600 });
    await expect(readEncryptedKeyFile(raw, master, 'ca/issuing')).rejects.toThrow(code('KEY_FILE_WRONG_PURPOSE'));
    await expect(openSecret(await readFile(issuing), { kind: 'master', key: master }, 'ca/issuing')).rejects.toThrow(
      code('KEY_FILE_WRONG_PURPOSE'),
    );
  });

  it('fail: unknown version, cipher or KDF → KEY_FILE_UNSUPPORTED; a bad label → TypeError', async () => {
    for (const t of [
      (d: Record<string, any>) => void (d['version'] = 2),
      (d: Record<string, any>) => void (d['cipher'] = 'aes-128-gcm'),
      (d: Record<string, any>) => void (d['kdf'].name = 'pbkdf2'),
    ]) {
      const p = file();
      await writeEncryptedKeyFile(p, pkcs8(), master, 'ca/issuing');
      await editJson(p, t);
      await expect(readEncryptedKeyFile(p, master, 'ca/issuing')).rejects.toThrow(code('KEY_FILE_UNSUPPORTED'));
    }
    await expect(writeEncryptedKeyFile(file(), pkcs8(), master, 'bad|label')).rejects.toThrow(TypeError);
  });

  it('fail: an existing file is not overwritten unless asked', async () => {
    const p = file();
    await writeEncryptedKeyFile(p, pkcs8(), master, 'ca/issuing');
    const before = await readFile(p);
    const other = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    await expect(writeEncryptedKeyFile(p, pkcs8(other), master, 'ca/issuing')).rejects.toThrow(code('KEY_FILE_EXISTS'));
    expect((await readFile(p)).equals(before)).toBe(true);
    await writeEncryptedKeyFile(p, pkcs8(other), master, 'ca/issuing', { overwrite: true });
    expect(sameKey(other, await readEncryptedKeyFile(p, master, 'ca/issuing'))).toBe(true);
  });

  it('writes 0600 atomically, leaves no temp file and no plaintext; reads back the same key', async () => {
    const p = file();
    const ed = generateKeyPairSync('ed25519').privateKey;
    await writeEncryptedKeyFile(p, pkcs8(), master, 'ca/issuing');
    expect((await stat(p)).mode & 0o777).toBe(0o600);
    const got = await readEncryptedKeyFile(p, master, 'ca/issuing');
    expect(got.type).toBe('private');
    expect(sameKey(got, ecKey)).toBe(true);
    const body = await readFile(p);
    const d = pkcs8().subarray(-32);
    expect(body.includes(d) || body.includes(d.toString('base64'))).toBe(false);
    const p2 = file();
    await writeEncryptedKeyFile(p2, pkcs8(ed), master, 'device/ed');
    expect((await readEncryptedKeyFile(p2, master, 'device/ed')).asymmetricKeyType).toBe('ed25519');
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('racing creators: exactly one wins; racing overwriters leave one whole file', async () => {
    const p = file();
    const keys = Array.from({ length: 4 }, () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const results = await Promise.allSettled(keys.map((k) => writeEncryptedKeyFile(p, pkcs8(k), master, 'ca/issuing')));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    await Promise.all(keys.map((k) => writeEncryptedKeyFile(p, pkcs8(k), master, 'ca/issuing', { overwrite: true })));
    const got = await readEncryptedKeyFile(p, master, 'ca/issuing');
    expect(keys.some((k) => sameKey(k, got))).toBe(true);
  });
});

describe('passphrase and machine-bound key files (devices)', () => {
  const pass = { kind: 'passphrase', passphrase: 'correct horse battery staple' } as const;

  it('fail: wrong passphrase → KEY_FILE_CORRUPT; weakened or oversized scrypt N → refused', async () => {
    const p = file();
    await writeProtectedKeyFile(p, pkcs8(), pass, 'device/identity');
    const stored = JSON.parse(await readFile(p, 'utf8')) as Record<string, any>;
    expect(stored['kdf']).toMatchObject({ name: 'scrypt', N: 2 ** 15, r: 8, p: 1 });
    await expect(readProtectedKeyFile(p, { kind: 'passphrase', passphrase: 'Correct horse battery staple' }, 'device/identity')).rejects.toThrow(
      code('KEY_FILE_CORRUPT'),
    );
    await expect(readProtectedKeyFile(p, { kind: 'master', key: master }, 'device/identity')).rejects.toThrow(code('KEY_FILE_UNSUPPORTED'));
    for (const [N, c] of [[2 ** 14, 'KEY_FILE_UNSUPPORTED'], [2 ** 21, 'KEY_FILE_UNSUPPORTED'], [2 ** 16, 'KEY_FILE_CORRUPT']] as const) {
      const q = file();
      await writeFile(q, JSON.stringify({ ...stored, kdf: { ...stored['kdf'], N } }), { mode: 0o600 });
      await expect(readProtectedKeyFile(q, pass, 'device/identity'), `N=${N}`).rejects.toThrow(code(c));
    }
    await expect(writeProtectedKeyFile(file(), pkcs8(), { ...pass, scrypt: { N: 2 ** 14 } }, 'x')).rejects.toThrow(RangeError);
  });

  it('round-trips with a passphrase (NFC-normalised) and with a 32-byte machine secret', async () => {
    const p = file();
    await writeProtectedKeyFile(p, pkcs8(), { kind: 'passphrase', passphrase: 'caf\u0065\u0301 au lait' }, 'device/identity');
    const got = await readProtectedKeyFile(p, { kind: 'passphrase', passphrase: 'caf\u00e9 au lait' }, 'device/identity');
    expect(sameKey(got, ecKey)).toBe(true);

    const secret = randomBytes(32);
    const m = file();
    await writeProtectedKeyFile(m, pkcs8(), { kind: 'machine', secret }, 'device/identity');
    expect(sameKey(await readProtectedKeyFile(m, { kind: 'machine', secret }, 'device/identity'), ecKey)).toBe(true);
    await expect(readProtectedKeyFile(m, { kind: 'machine', secret: randomBytes(32) }, 'device/identity')).rejects.toThrow(code('KEY_FILE_CORRUPT'));
    // A machine secret and a master key with the same bytes are still different protectors.
    await expect(readProtectedKeyFile(m, { kind: 'master', key: secret }, 'device/identity')).rejects.toThrow(code('KEY_FILE_UNSUPPORTED'));
  });
});
