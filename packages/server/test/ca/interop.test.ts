import { execFile, execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OID_FLEETKEY_ISSUANCE_METHOD } from '@fleetkey/crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { deviceKey, openssl } from '../support/pki.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

/**
 * Interop: every kind of object Fleetkey signs — device LDevID and IDevID, the CA certificates,
 * the server TLS certificate, the CRLs (root included) and OCSP responses — freshly issued by a
 * running server, read by three independent stacks: OpenSSL's CLI, Go's standard library with
 * x/crypto/ocsp (interop-go/main.go, built offline from Debian's packages) and pyca/cryptography
 * (interop.py under Debian's /usr/bin/python3). In CI (CI=true) a missing tool fails the suite;
 * elsewhere the stack is skipped with the reason printed.
 */

const here = fileURLToPath(new URL('.', import.meta.url));
const PYTHON = '/usr/bin/python3';
const GO_ENV = { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOCACHE: join(tmpdir(), 'fleetkey-interop-go-cache'), GOFLAGS: '' };

function probe(what: string, run: () => void): boolean {
  try {
    run();
    return true;
  } catch (e) {
    const reason = `${what} is not available (${(e as Error).message.split('\n')[0]})`;
    if (process.env['CI'] === 'true') throw new Error(`CI: ${reason}; .ci/run installs it`);
    console.warn(`interop: skipping the ${what} checks: ${reason}`);
    return false;
  }
}
const haveGo = probe('Go with golang.org/x/crypto/ocsp', () =>
  execFileSync('go', ['list', 'golang.org/x/crypto/ocsp'], { env: GO_ENV, stdio: 'pipe', timeout: 60_000 }),
);
const havePython = probe('python3-cryptography', () => execFileSync(PYTHON, ['-c', 'import cryptography.x509.ocsp'], { stdio: 'pipe' }));

const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ ok: boolean; out: string }> =>
  new Promise((resolve) => {
    execFile(cmd, args, { env, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => resolve({ ok: err === null, out: `${stdout}${stderr}` }));
  });

/** The one URI of a certificate extension as openssl prints it (CRL DP, AIA caIssuers/OCSP). */
async function uriIn(pem: string, ext: string, label = ''): Promise<string | undefined> {
  const r = await openssl((d) => ['x509', '-in', join(d, 'c.pem'), '-noout', '-ext', ext], { 'c.pem': pem });
  return new RegExp(`${label}URI:(\\S+)`).exec(r.out)?.[1];
}

describe('interop: Fleetkey-issued certificates, CRLs and OCSP responses in OpenSSL, Go and pyca/cryptography', () => {
  let t: TestServer;
  let dir: string;
  const pem: Record<string, string> = {};
  const serial: Record<string, string> = {};
  const ids: Record<string, string> = {};
  let manifest: string;

  /** Fetches the CRL a certificate's CRL distribution point names, from this server. */
  const crlNamedBy = async (certPem: string): Promise<Buffer> => {
    const dp = await uriIn(certPem, 'crlDistributionPoints');
    if (dp === undefined) throw new Error(`no CRL distribution point in ${new X509Certificate(certPem).subject}`);
    const res = await fetch(`${t.url}${new URL(dp).pathname}`);
    if (res.status !== 200) throw new Error(`GET ${dp}: ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  };

  const ocspOf = async (name: string, issuer: string): Promise<Buffer> => {
    const out = join(dir, `ocsp-${name}.der`);
    const r = await openssl((d) => ['ocsp', '-issuer', join(dir, `${issuer}.pem`), '-cert', join(dir, `${name}.pem`), '-url', `${t.url}/pki/ocsp`, '-respout', out, '-noverify', '-resp_text'], {});
    expect(r.ok, r.out).toBe(true);
    return readFileSync(out);
  };

  beforeAll(async () => {
    t = await startTestServer('sqlite');
    dir = mkdtempSync(join(tmpdir(), 'fleetkey-interop-'));
    const ca = (await t.call('GET', '/v1/ca')).body as { authorities: { id: string; role: string; certificatePem: string }[] };
    for (const a of ca.authorities) {
      pem[a.role] = a.certificatePem;
      ids[a.role] = a.id;
    }
    pem['server'] = t.server.ca.tls.certPem;
    const issue = async (name: string, kind: 'operational' | 'idevid') => {
      const id = (await t.call('POST', '/v1/devices', { body: {} })).body.id as string;
      const r = await t.call('POST', '/v1/certificates', { body: { deviceId: id, csr: deviceKey().csrPem, kind } });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      pem[name] = r.body.certificate.certificatePem;
      serial[name] = r.body.certificate.serial;
    };
    await issue('ldevid', 'operational');
    await issue('ldevid-revoked', 'operational');
    await issue('idevid', 'idevid');
    await issue('idevid-revoked', 'idevid');
    for (const name of ['ldevid-revoked', 'idevid-revoked']) {
      expect((await t.call('POST', `/v1/certificates/${serial[name]}/revoke`, { body: { reason: 'keyCompromise' } })).status).toBe(200);
    }
    for (const [name, p] of Object.entries(pem)) writeFileSync(join(dir, `${name}.pem`), p);
    // Each CRL is fetched where the certificates say it is: CA certificates name the root's.
    writeFileSync(join(dir, 'root.crl'), await crlNamedBy(pem['issuing']!).catch(() => Buffer.alloc(0)));
    writeFileSync(join(dir, 'issuing.crl'), await crlNamedBy(pem['ldevid']!));
    writeFileSync(join(dir, 'manufacturing.crl'), await crlNamedBy(pem['idevid']!));
    for (const c of ['root', 'issuing', 'manufacturing']) await run('openssl', ['crl', '-inform', 'DER', '-in', join(dir, `${c}.crl`), '-out', join(dir, `${c}.crl.pem`)]);
    await ocspOf('ldevid', 'issuing');
    await ocspOf('ldevid-revoked', 'issuing');
    await ocspOf('idevid', 'manufacturing');
    manifest = join(dir, 'manifest.json');
    writeFileSync(
      manifest,
      JSON.stringify({
        roots: ['root.pem'],
        intermediates: ['issuing.pem', 'manufacturing.pem'],
        leaves: [
          { name: 'ldevid', file: 'ldevid.pem', usage: 'client' },
          { name: 'idevid', file: 'idevid.pem', usage: 'client' },
          { name: 'server', file: 'server.pem', usage: 'server' },
        ],
        crls: [
          { name: 'root', file: 'root.crl', issuer: 'root.pem', revoked: [] },
          { name: 'issuing', file: 'issuing.crl', issuer: 'issuing.pem', revoked: [serial['ldevid-revoked']] },
          { name: 'manufacturing', file: 'manufacturing.crl', issuer: 'manufacturing.pem', revoked: [serial['idevid-revoked']] },
        ],
        ocsp: [
          { name: 'ldevid', response: 'ocsp-ldevid.der', cert: 'ldevid.pem', issuer: 'issuing.pem', expect: 'good' },
          { name: 'ldevid-revoked', response: 'ocsp-ldevid-revoked.der', cert: 'ldevid-revoked.pem', issuer: 'issuing.pem', expect: 'revoked' },
          { name: 'idevid', response: 'ocsp-idevid.der', cert: 'idevid.pem', issuer: 'manufacturing.pem', expect: 'good' },
        ],
        provenanceOids: [OID_FLEETKEY_ISSUANCE_METHOD],
      }),
    );
  });
  afterAll(async () => {
    await t?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** The lines a checker printed, as a map from check name to its ok/FAIL line. */
  const linesOf = (out: string): Map<string, string> =>
    new Map(out.split('\n').filter((l) => /^(ok|FAIL) /.test(l)).map((l) => [l.replace(/^(ok|FAIL) /, '').split(':')[0]!, l]));
  const EXPECTED_CHECKS = [
    'verify issuing.pem',
    'verify manufacturing.pem',
    'verify ldevid',
    'verify idevid',
    'verify server',
    'crl root',
    'crl issuing',
    'crl manufacturing',
    'ocsp ldevid',
    'ocsp ldevid-revoked',
    'ocsp idevid',
  ];
  const expectAllOk = (out: string) => {
    const lines = linesOf(out);
    for (const check of EXPECTED_CHECKS) expect(lines.get(check) ?? `missing ${check}\n${out}`, out).toMatch(/^ok /);
  };

  test('openssl verify -x509_strict -crl_check_all accepts every certificate with the CRLs its chain names; the revoked ones are refused', async () => {
    const files = join(dir, 'root.crl.pem');
    const verify = (purpose: string, target: string, ...untrusted: string[]) =>
      run('openssl', [
        'verify', '-x509_strict', '-crl_check_all', '-purpose', purpose,
        '-CAfile', join(dir, 'root.pem'),
        ...untrusted.flatMap((u) => ['-untrusted', join(dir, `${u}.pem`)]),
        '-CRLfile', files,
        ...untrusted.flatMap((u) => ['-CRLfile', join(dir, `${u}.crl.pem`)]),
        join(dir, `${target}.pem`),
      ]);
    for (const ca of ['issuing', 'manufacturing']) {
      const r = await verify('any', ca);
      expect(r.out, `${ca}: ${r.out}`).toContain(': OK');
    }
    for (const [leaf, issuer, purpose] of [['ldevid', 'issuing', 'sslclient'], ['idevid', 'manufacturing', 'sslclient'], ['server', 'issuing', 'sslserver']] as const) {
      const r = await verify(purpose, leaf, issuer);
      expect(r.out, `${leaf}: ${r.out}`).toContain(': OK');
    }
    for (const [leaf, issuer] of [['ldevid-revoked', 'issuing'], ['idevid-revoked', 'manufacturing']] as const) {
      const r = await verify('sslclient', leaf, issuer);
      expect(r.ok).toBe(false);
      expect(r.out).toContain('certificate revoked');
    }
  });

  test('openssl ocsp verifies every response against the issuing CA with no delegated responder', async () => {
    for (const [name, issuer, status] of [['ldevid', 'issuing', 'good'], ['ldevid-revoked', 'issuing', 'revoked'], ['idevid', 'manufacturing', 'good']] as const) {
      const r = await run('openssl', [
        'ocsp', '-respin', join(dir, `ocsp-${name}.der`), '-issuer', join(dir, `${issuer}.pem`), '-cert', join(dir, `${name}.pem`),
        '-CAfile', join(dir, 'root.pem'), '-VAfile', join(dir, `${issuer}.pem`), '-no_nonce', '-resp_text',
      ]);
      expect(r.out, r.out).toContain('Response verify OK');
      expect(r.out).toContain(`: ${status}`);
    }
  });

  test.skipIf(!haveGo)("Go's crypto/x509 verifies every chain and CRL, x/crypto/ocsp reads every OCSP response with the issuer", async () => {
    const bin = join(dir, 'go-bin');
    mkdirSync(bin, { recursive: true });
    const built = await new Promise<{ ok: boolean; out: string }>((resolve) => {
      execFile('go', ['build', '-o', join(bin, 'interop-go'), '.'], { cwd: join(here, 'interop-go'), env: GO_ENV, timeout: 300_000 }, (err, stdout, stderr) =>
        resolve({ ok: err === null, out: `${stdout}${stderr}` }),
      );
    });
    expect(built.ok, built.out).toBe(true);
    const r = await run(join(bin, 'interop-go'), [manifest]);
    expectAllOk(r.out);
    expect(r.ok, r.out).toBe(true);
  }, 300_000);

  test.skipIf(!havePython)('pyca/cryptography verifies every signature, CRL and OCSP response with the issuer key', async () => {
    const r = await run(PYTHON, [join(here, 'interop.py'), manifest]);
    expectAllOk(r.out);
    expect(r.ok, r.out).toBe(true);
  });

  test('an IDevID by default has no well-defined expiration: notAfter 99991231235959Z as GeneralizedTime (RFC 5280 §4.1.2.5)', () => {
    const der = new X509Certificate(pem['idevid']!).raw;
    expect(der.includes(Buffer.from([0x18, 0x0f, ...Buffer.from('99991231235959Z', 'latin1')]))).toBe(true);
    // The operational certificate keeps its policy lifetime (30 days by default).
    expect(Date.parse(new X509Certificate(pem['ldevid']!).validTo) - Date.now()).toBeLessThan(31 * 86_400_000);
  });
});
