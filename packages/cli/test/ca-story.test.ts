import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createSoftHsm, softHsmAvailable, type SoftHsm } from '../../crypto/test/support/softhsm.js';
import { fleetkey, fleetkeyJson, serve } from './run-cli.js';

function csr(dir: string): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  writeFileSync(join(dir, 'dev.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  execFileSync('openssl', ['req', '-new', '-key', join(dir, 'dev.key'), '-subj', '/CN=dev', '-out', join(dir, 'dev.csr')]);
  return join(dir, 'dev.csr');
}

describe.skipIf(!softHsmAvailable)('the CA through the fleetkey binary, with CA keys in a SoftHSM2 token', () => {
  let cwd: string;
  let hsm: SoftHsm;
  let env: Record<string, string>;
  let server: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'fleetkey-ca-cli-'));
    hsm = await createSoftHsm();
    const token = await hsm.addToken('fleetkey-ca');
    writeFileSync(join(cwd, 'pin'), `${token.pin}\n`, { mode: 0o600 });
    env = { SOFTHSM2_CONF: hsm.conf };
  });
  afterAll(async () => {
    await server?.stop();
    await hsm?.cleanup();
    rmSync(cwd, { recursive: true, force: true });
  });

  test('fail: init with a PKCS#11 keystore but no token options is refused', async () => {
    const r = await fleetkey(cwd, ['init', '--data-dir', join(cwd, 'bad'), '--keystore', 'pkcs11'], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('--module');
  });

  test('init puts the CA keys in the token (no key files), then serve uses them', async () => {
    const r = await fleetkeyJson(cwd, ['init', '--keystore', 'pkcs11', '--module', hsm.module, '--token-label', 'fleetkey-ca', '--pin-file', join(cwd, 'pin'), '--curve', 'P-384'], env);
    expect(r.authorities.map((a: { keystore: string }) => a.keystore)).toEqual(['pkcs11', 'pkcs11', 'pkcs11']);
    expect(r.adminToken).toMatch(/^fkt_/);
    const caFiles = readFileSafe(join(cwd, 'fleetkey-data', 'ca'));
    expect(caFiles.filter((f) => f.endsWith('.key') && !f.startsWith('tls-'))).toEqual([]);
    const again = await fleetkey(cwd, ['init'], env);
    expect(again.code).toBe(3);
    expect(again.stderr).toContain('already initialised');
    server = await serve(cwd, [], env);
  });

  test('cert issue / show / list / revoke, and the CRL names the revoked serial', async () => {
    const dev = await fleetkeyJson(cwd, ['device', 'create']);
    const out = join(cwd, 'dev-chain.pem');
    const issued = await fleetkeyJson(cwd, ['cert', 'issue', '--device', dev.id, '--csr', csr(cwd), '--validity', '48h', '--out', out], env);
    const serial = issued.certificate.serial as string;
    expect(readFileSync(out, 'utf8')).toContain('BEGIN CERTIFICATE');
    execFileSync('openssl', ['verify', '-CAfile', join(cwd, 'fleetkey-data', 'ca-bundle.pem'), out]);
    expect((await fleetkeyJson(cwd, ['cert', 'show', serial])).status).toBe('valid');
    expect((await fleetkeyJson(cwd, ['cert', 'list', '--device', dev.id])).certificates).toHaveLength(1);
    const bad = await fleetkey(cwd, ['cert', 'revoke', serial, '--reason', 'lostIt'], env);
    expect(bad.code).toBe(2);
    await fleetkeyJson(cwd, ['cert', 'revoke', serial, '--reason', 'keyCompromise']);
    const ca = await fleetkeyJson(cwd, ['ca', 'show']);
    const issuing = ca.authorities.find((a: { role: string }) => a.role === 'issuing');
    const crl = Buffer.from(await (await fetch(issuing.crlUrl)).arrayBuffer());
    writeFileSync(join(cwd, 'c.crl'), crl);
    const text = execFileSync('openssl', ['crl', '-inform', 'DER', '-in', join(cwd, 'c.crl'), '-CAfile', join(cwd, 'fleetkey-data', 'ca-bundle.pem'), '-noout', '-text'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(text).toContain(serial.toUpperCase());
    expect(text).toContain('ecdsa-with-SHA384'); // signed inside the token with the P-384 issuing key
  });

  test('ca export writes the CA certificates; a token-held root cannot be exported', async () => {
    await fleetkeyJson(cwd, ['ca', 'export', '--out', join(cwd, 'cas.pem')]);
    expect(readFileSync(join(cwd, 'cas.pem'), 'utf8').match(/BEGIN CERTIFICATE/g)).toHaveLength(3);
    writeFileSync(join(cwd, 'pass'), 'a long enough passphrase\n', { mode: 0o600 });
    const r = await fleetkey(cwd, ['ca', 'export', '--root-key', '--passphrase-file', join(cwd, 'pass'), '--out', join(cwd, 'root.enc')], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CA_ROOT_NOT_EXPORTABLE');
  });

  test('ca rotate signs a new issuing CA inside the token', async () => {
    const r = await fleetkeyJson(cwd, ['ca', 'rotate']);
    const ca = await fleetkeyJson(cwd, ['ca', 'show']);
    expect(ca.authorities.find((a: { id: string }) => a.id === r.id)).toMatchObject({ role: 'issuing', status: 'active', keystore: 'pkcs11' });
  });
});

function readFileSafe(dir: string): string[] {
  try {
    return execFileSync('ls', [dir], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return [];
  }
}
