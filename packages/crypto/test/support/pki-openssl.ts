import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { toPem } from '../../src/pki/pem.js';

const run = promisify(execFile);

export interface OpensslResult {
  readonly ok: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the openssl binary; never throws on a non-zero exit, so refusals can be asserted. */
export async function openssl(args: readonly string[], input?: { cwd?: string }): Promise<OpensslResult> {
  try {
    const { stdout, stderr } = await run('openssl', [...args], { cwd: input?.cwd, timeout: 20_000, maxBuffer: 64 * 1024 * 1024 });
    return { ok: true, stdout, stderr };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return { ok: false, stdout: err.stdout ?? '', stderr: err.stderr ?? String(e) };
  }
}

/** A temp directory under os.tmpdir(), removed by `dispose`. */
export async function tempDir(): Promise<{ dir: string; file: (name: string, content: string | Buffer) => Promise<string>; dispose: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetkey-pki-'));
  return {
    dir,
    file: async (name, content) => {
      const path = join(dir, name);
      await writeFile(path, content);
      return path;
    },
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}

export const certPem = (der: Buffer): string => toPem(der, 'CERTIFICATE');

/**
 * Parses `leafDer` with Node (throws if Node refuses it) and checks it with
 * `openssl verify -CAfile root [-untrusted intermediates] [-purpose]`.
 */
export async function opensslVerify(
  leafDer: Buffer,
  root: Buffer,
  intermediates: readonly Buffer[] = [],
  extra: readonly string[] = [],
): Promise<OpensslResult> {
  new X509Certificate(leafDer);
  const t = await tempDir();
  try {
    const args = ['verify', '-x509_strict', '-CAfile', await t.file('root.pem', certPem(root))];
    if (intermediates.length > 0) args.push('-untrusted', await t.file('int.pem', intermediates.map(certPem).join('')));
    args.push(...extra, await t.file('leaf.pem', certPem(leafDer)));
    return await openssl(args);
  } finally {
    await t.dispose();
  }
}

/** opensslVerify for many leaves in one openssl run; resolves true only if every one verifies. */
export async function opensslVerifyAll(leaves: readonly Buffer[], root: Buffer, intermediates: readonly Buffer[] = [], extra: readonly string[] = []): Promise<OpensslResult & { okCount: number }> {
  for (const leaf of leaves) new X509Certificate(leaf);
  const t = await tempDir();
  try {
    const args = ['verify', '-x509_strict', '-CAfile', await t.file('root.pem', certPem(root))];
    if (intermediates.length > 0) args.push('-untrusted', await t.file('int.pem', intermediates.map(certPem).join('')));
    args.push(...extra);
    for (const [i, leaf] of leaves.entries()) args.push(await t.file(`leaf-${i}.pem`, certPem(leaf)));
    const r = await openssl(args);
    const okCount = r.stdout.split('\n').filter((l) => l.endsWith(': OK')).length;
    return { ...r, ok: r.ok && okCount === leaves.length, okCount };
  } finally {
    await t.dispose();
  }
}
