import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportRootKey, importRootKey, loadOrCreateMasterKey, masterKeyFromEnv } from '../src/keys/index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fk-master-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
const code = (c: string) => expect.objectContaining({ code: c });

describe('loadOrCreateMasterKey', () => {
  it('fail: a master key file readable by group or others is refused', async () => {
    const p = join(dir, 'open.key');
    await loadOrCreateMasterKey(p);
    for (const mode of [0o640, 0o604, 0o666]) {
      await chmod(p, mode);
      await expect(loadOrCreateMasterKey(p)).rejects.toThrow(code('KEY_FILE_PERMISSIONS'));
    }
  });

  it('fail: a malformed file is refused, not replaced', async () => {
    const p = join(dir, 'short.key');
    await writeFile(p, `${randomBytes(31).toString('base64')}\n`, { mode: 0o600 });
    await expect(loadOrCreateMasterKey(p)).rejects.toThrow(code('MASTER_KEY_INVALID'));
    expect((await readFile(p, 'utf8')).trim().length).toBe(44);
  });

  it('creates 32 random bytes with mode 0600 in a new directory, then loads the same', async () => {
    const p = join(dir, 'sub', 'master.key');
    const a = await loadOrCreateMasterKey(p);
    expect(a.created).toBe(true);
    expect(a.key.length).toBe(32);
    expect((await stat(p)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'sub'))).mode & 0o777).toBe(0o700);
    const b = await loadOrCreateMasterKey(p);
    expect(b.created).toBe(false);
    expect(b.key.equals(a.key)).toBe(true);
  });

  it('concurrent first starts agree on one key', async () => {
    const p = join(dir, 'race.key');
    const all = await Promise.all(Array.from({ length: 5 }, () => loadOrCreateMasterKey(p)));
    expect(all.filter((r) => r.created)).toHaveLength(1);
    for (const r of all) expect(r.key.equals(all[0]!.key)).toBe(true);
  });
});

describe('masterKeyFromEnv', () => {
  it.each([
    ['unset', undefined],
    ['empty', ''],
    ['31 bytes', randomBytes(31).toString('base64')],
    ['33 bytes', randomBytes(33).toString('base64')],
    ['base64url alphabet', `${'_'.repeat(43)}=`],
    ['unpadded', randomBytes(32).toString('base64').slice(0, 43)],
    ['non-canonical padding bits', `${'A'.repeat(42)}B=`],
    ['hex', randomBytes(32).toString('hex')],
  ])('fail: %s → MASTER_KEY_INVALID', (_name, value) => {
    expect(() => masterKeyFromEnv(value)).toThrow(code('MASTER_KEY_INVALID'));
  });

  it('accepts canonical base64 of 32 bytes, with surrounding whitespace', () => {
    const k = randomBytes(32);
    expect(masterKeyFromEnv(` ${k.toString('base64')}\n`).equals(k)).toBe(true);
  });
});

describe('root CA key export (passphrase, scrypt + AES-256-GCM)', () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const pass = 'a long offline passphrase';
  let armored = '';
  beforeAll(async () => {
    armored = await exportRootKey(privateKey, pass); // default cost, N = 2^17
  });

  it('fail: wrong passphrase, tampered body, other purpose, short passphrase, missing armor', async () => {
    await expect(importRootKey(armored, 'a long offline passphrasE')).rejects.toThrow(code('KEY_FILE_CORRUPT'));
    const lines = armored.trim().split('\n');
    const mid = lines[3]!;
    lines[3] = mid.slice(0, 10) + (mid[10] === 'A' ? 'B' : 'A') + mid.slice(11);
    await expect(importRootKey(lines.join('\n'), pass)).rejects.toThrow(expect.objectContaining({ code: expect.stringMatching(/^KEY_FILE_/) }));
    await expect(importRootKey(armored, pass, { label: 'ca/issuing' })).rejects.toThrow(code('KEY_FILE_WRONG_PURPOSE'));
    await expect(exportRootKey(privateKey, 'short')).rejects.toThrow(RangeError);
    await expect(importRootKey(armored.replace('BEGIN', 'BEGlN'), pass)).rejects.toThrow(code('KEY_FILE_CORRUPT'));
  });

  it('round-trips; the armor carries scrypt N=2^17 and no PKCS#8 bytes', async () => {
    expect(armored.startsWith('-----BEGIN FLEETKEY ENCRYPTED PRIVATE KEY-----\n')).toBe(true);
    const body = armored.split('\n').slice(1, -2).join('');
    const env = JSON.parse(Buffer.from(body, 'base64').toString('utf8')) as { kdf: { N: number } };
    expect(env.kdf.N).toBe(2 ** 17);
    expect(armored.includes(privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64').slice(-40))).toBe(false);
    const back = await importRootKey(armored, pass);
    const sig = sign('sha384', Buffer.from('crl'), back);
    expect(verify('sha384', Buffer.from('crl'), privateKey, sig)).toBe(true);
  });
});
