/**
 * Where a device process's secrets went before the zeroization test could see them (issue 13):
 * two operations that left a copy in freed native memory, each measured against its control.
 *   - Node's `Decipher.update` writes into a buffer one byte larger than its input, copies the
 *     result into an exact-size one and frees the first unwiped: the plaintext stays in the malloc
 *     heap. `aes256GcmDecrypt` (key files, sealed secrets) decrypts 8 bytes at a time, which the
 *     allocator's own free-list pointer overwrites.
 *   - Turning a PKCS#8 DER into a KeyObject goes through OpenSSL 3.0's DER decoder, which frees
 *     its copy of the DER unwiped. The file keystore keeps the generated KeyObject instead of
 *     re-parsing the DER it writes (loading a key file at start still parses: docs/SECURITY.md).
 * Each control must find a copy in most runs (measured: 15 of 15 and 11 of 12), so a search
 * that silently stopped working fails here.
 */
import { spawn } from 'node:child_process';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { aes256GcmEncrypt, openPrivateKey } from '@fleetkey/crypto';
import { searchProcessMemory, type Needle } from './memory-search.js';

const CHILD = fileURLToPath(new URL('./residue-child.mjs', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'fk-residue-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

type Mode = 'decrypt-node' | 'decrypt-fleetkey' | 'keygen-reparse' | 'keygen-fleetkey';

/** Runs `mode` in `runs` fresh processes; returns how many of them still held a needle. */
async function processesWithResidue(mode: Mode, runs: number): Promise<number> {
  let found = 0;
  for (let r = 0; r < runs; r++) {
    const dir = mkdtempSync(join(root, `${mode}-`));
    const secret = randomBytes(32);
    let needle: Needle | undefined;
    if (mode.startsWith('decrypt')) {
      // 200 bytes, as a PKCS#8 key is: the part past the first 16 bytes is what an unwiped freed
      // chunk keeps (glibc overwrites at most its first 16 bytes).
      const plain = randomBytes(200);
      const key = randomBytes(32);
      writeFileSync(join(dir, 'aes.key'), key, { mode: 0o600 });
      writeFileSync(join(dir, 'sealed'), aes256GcmEncrypt(key, plain));
      needle = { what: 'plaintext past its first 16 bytes', bytes: plain.subarray(16) };
    }
    const child = spawn(process.execPath, [CHILD, dir, mode, secret.toString('hex')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('done') && resolve());
      child.once('exit', (code) => reject(new Error(`${mode} exited ${code}: ${err}`)));
    });
    if (needle === undefined) {
      const key = existsSync(join(dir, 'plain.der'))
        ? createPrivateKey({ key: readFileSync(join(dir, 'plain.der')), format: 'der', type: 'pkcs8' })
        : await openPrivateKey(readFileSync(join(dir, 'keys', 'operational-1.key')), { kind: 'machine', secret }, 'device-key/operational-1');
      needle = { what: 'private scalar', bytes: Buffer.from(key.export({ format: 'jwk' }).d!, 'base64url') };
    }
    if (searchProcessMemory(child.pid!, [needle]).length > 0) found++;
    child.stdin!.end();
    await new Promise((res) => child.once('exit', res));
  }
  return found;
}

describe.skipIf(!existsSync('/proc/self/mem'))('residue of a secret in freed native memory', () => {
  it('control: Node\'s whole-buffer Decipher.update leaves the plaintext; fail: aes256GcmDecrypt leaves none of it', async () => {
    expect(await processesWithResidue('decrypt-node', 4)).toBeGreaterThan(0);
    expect(await processesWithResidue('decrypt-fleetkey', 6)).toBe(0);
  }, 120_000);

  it('control: re-parsing a generated key\'s DER leaves its scalar; fail: the file keystore\'s generateKey leaves none', async () => {
    expect(await processesWithResidue('keygen-reparse', 4)).toBeGreaterThan(0);
    expect(await processesWithResidue('keygen-fleetkey', 6)).toBe(0);
  }, 120_000);
});
