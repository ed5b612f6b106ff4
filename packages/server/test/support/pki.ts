import { execFile, execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface DeviceKey {
  readonly key: KeyObject;
  readonly keyPem: string;
  readonly csrPem: string;
}

/** A device key and a CSR made by OpenSSL's own `req`: an independent client for our CA. */
export function deviceKey(curve: 'prime256v1' | 'secp384r1' = 'prime256v1', cn = 'device'): DeviceKey {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: curve });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  return { key: privateKey, keyPem, csrPem: csrFor(keyPem, cn) };
}

export function csrFor(keyPem: string, cn = 'device', extra: string[] = []): string {
  return withTemp((dir) => {
    writeFileSync(join(dir, 'k.pem'), keyPem, { mode: 0o600 });
    return execFileSync('openssl', ['req', '-new', '-key', join(dir, 'k.pem'), '-subj', `/CN=${cn}`, ...extra], { encoding: 'utf8' });
  });
}

export function rsaCsr(bits: number): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return csrFor(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
}

export function withTemp<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-pki-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs openssl with files written to a temp dir; returns status and output instead of throwing.
 * Asynchronous on purpose: `openssl ocsp -url` calls the server running in this very process,
 * which a synchronous child would starve.
 */
export async function openssl(args: (dir: string) => string[], files: Record<string, string | Buffer> = {}): Promise<{ ok: boolean; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-pki-'));
  try {
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
    return await new Promise((resolve) => {
      const child = execFile('openssl', args(dir), { encoding: 'utf8', timeout: 15_000 }, (err, stdout, stderr) => {
        resolve({ ok: err === null, out: `${stdout}${stderr}` });
      });
      child.stdin?.end();
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
