import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyProtector } from '@fleetkey/crypto';
import { FileKeystore } from '../src/keystore/index.js';

const code = (c: string) => expect.objectContaining({ code: c });
let root: string;
let n = 0;
const newDir = (): string => join(root, `ks${++n}`);
const machine = (): KeyProtector => ({ kind: 'machine', secret: randomBytes(32) });

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fk-file-ks-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('FileKeystore refusals', () => {
  it('fail: a wrong passphrase cannot open the key (scrypt envelope)', async () => {
    const dir = newDir();
    const ks = await FileKeystore.open({ dir, protector: { kind: 'passphrase', passphrase: 'correct horse battery staple' } });
    await ks.generateKey('device', 'P-256');
    await ks.close();
    const wrong = await FileKeystore.open({ dir, protector: { kind: 'passphrase', passphrase: 'correct horse battery stapler' } });
    await expect(wrong.getKey('device')).rejects.toThrow(code('KEY_FILE_CORRUPT'));
    await wrong.close();
    const right = await FileKeystore.open({ dir, protector: { kind: 'passphrase', passphrase: 'correct horse battery staple' } });
    expect(await right.getKey('device')).toBeDefined();
    await right.close();
  });

  it('fail: a different machine secret, or a passphrase where a machine secret sealed it', async () => {
    const dir = newDir();
    const ks = await FileKeystore.open({ dir, protector: machine() });
    await ks.generateKey('device', 'P-256');
    await ks.close();
    const other = await FileKeystore.open({ dir, protector: machine() });
    await expect(other.getKey('device')).rejects.toThrow(code('KEY_FILE_CORRUPT'));
    const pass = await FileKeystore.open({ dir, protector: { kind: 'passphrase', passphrase: 'x' } });
    await expect(pass.getKey('device')).rejects.toThrow(code('KEY_FILE_UNSUPPORTED'));
  });

  it('fail: a tampered key file (one bit of the ciphertext) is refused', async () => {
    const dir = newDir();
    const protector = machine();
    const ks = await FileKeystore.open({ dir, protector });
    await ks.generateKey('device', 'P-256');
    await ks.close();
    const path = join(dir, 'device.key');
    const doc = JSON.parse(await readFile(path, 'utf8')) as { sealed: string };
    const sealed = Buffer.from(doc.sealed, 'base64');
    sealed[20] = (sealed[20] ?? 0) ^ 0x01;
    doc.sealed = sealed.toString('base64');
    await writeFile(path, JSON.stringify(doc), { mode: 0o600 });
    const again = await FileKeystore.open({ dir, protector });
    await expect(again.getKey('device')).rejects.toThrow(code('KEY_FILE_CORRUPT'));
  });

  it('fail: a key file renamed to another label is refused (the label is bound into the AAD)', async () => {
    const dir = newDir();
    const protector = machine();
    const ks = await FileKeystore.open({ dir, protector });
    await ks.generateKey('idevid', 'P-256');
    await ks.close();
    await rename(join(dir, 'idevid.key'), join(dir, 'operational.key'));
    const again = await FileKeystore.open({ dir, protector });
    await expect(again.getKey('operational')).rejects.toThrow(code('KEY_FILE_WRONG_PURPOSE'));
  });

  it.each([0o640, 0o604, 0o644])('fail: a key file with mode %o is refused', async (mode) => {
    const dir = newDir();
    const protector = machine();
    const ks = await FileKeystore.open({ dir, protector });
    await ks.generateKey('device', 'P-256');
    await ks.close();
    await chmod(join(dir, 'device.key'), mode);
    const again = await FileKeystore.open({ dir, protector });
    await expect(again.getKey('device')).rejects.toThrow(code('KEY_FILE_PERMISSIONS'));
  });

  it('fail: a directory group/others can reach, or a symlink in place of it or of a key, is refused', async () => {
    const dir = newDir();
    const protector = machine();
    await mkdir(dir, { mode: 0o755 });
    await chmod(dir, 0o755);
    await expect(FileKeystore.open({ dir, protector })).rejects.toThrow(code('KEY_FILE_PERMISSIONS'));

    const good = newDir();
    const ks = await FileKeystore.open({ dir: good, protector });
    await ks.generateKey('real', 'P-256');
    await chmod(good, 0o750); // loosened while open: the next operation notices
    await expect(ks.generateKey('later', 'P-256')).rejects.toThrow(code('KEY_FILE_PERMISSIONS'));
    await chmod(good, 0o700);

    const linkDir = newDir();
    await symlink(good, linkDir);
    await expect(FileKeystore.open({ dir: linkDir, protector })).rejects.toThrow(code('KEY_FILE_PERMISSIONS'));

    await symlink(join(good, 'real.key'), join(good, 'alias.key'));
    const again = await FileKeystore.open({ dir: good, protector });
    await expect(again.getKey('alias')).rejects.toThrow(code('KEY_FILE_PERMISSIONS'));
  });

  it('fail: scrypt parameters below the floor are refused at generation', async () => {
    const ks = await FileKeystore.open({ dir: newDir(), protector: { kind: 'passphrase', passphrase: 'p', scrypt: { N: 1024 } } });
    await expect(ks.generateKey('weak', 'P-256')).rejects.toThrow(RangeError);
  });
});

describe('FileKeystore at rest', () => {
  it('creates the directory 0700 and key files 0600, and no plaintext key bytes reach the disk', async () => {
    const dir = newDir();
    const ks = await FileKeystore.open({ dir, protector: machine() });
    const key = await ks.generateKey('device', 'P-384');
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'device.key'))).mode & 0o777).toBe(0o600);
    const onDisk = await readFile(join(dir, 'device.key'));
    const jwk = key.tlsKey()!.export({ format: 'jwk' });
    const scalar = Buffer.from(jwk.d!, 'base64url');
    const pkcs8 = key.tlsKey()!.export({ format: 'der', type: 'pkcs8' });
    for (const needle of [scalar, Buffer.from(scalar.toString('base64')), Buffer.from(jwk.d!), Buffer.from(pkcs8.toString('base64'))]) {
      expect(onDisk.includes(needle)).toBe(false);
    }
    const doc = JSON.parse(onDisk.toString('utf8')) as Record<string, unknown>;
    expect(doc).toMatchObject({ format: 'fleetkey-envelope', label: 'device-key/device', content: 'pkcs8', cipher: 'aes-256-gcm' });
  });

  it('close() leaves the caller\'s secret intact (the keystore zeroes only its own copy) and refuses further use', async () => {
    const secret = randomBytes(32);
    const original = Buffer.from(secret);
    const ks = await FileKeystore.open({ dir: newDir(), protector: { kind: 'machine', secret } });
    await ks.generateKey('device', 'P-256');
    await ks.close();
    expect(secret.equals(original)).toBe(true);
    await expect(ks.getKey('device')).rejects.toThrow(code('INTERNAL'));
  });
});
