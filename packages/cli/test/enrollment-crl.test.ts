import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fleetkey, fleetkeyJson, serve } from './run-cli.js';

/** An outside manufacturer CA and its CRL made by OpenSSL (`req -x509`, `ca -gencrl`). */
function opensslCa(dir: string, name: string): { root: string; crlPem: string; crlDer: string } {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
  run('req', '-x509', '-new', '-key', `${name}.key`, '-subj', `/O=Outside Robotics/CN=${name}`, '-days', '3650', '-out', `${name}.pem`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', 'subjectKeyIdentifier=hash');
  writeFileSync(join(dir, `${name}.index`), '');
  writeFileSync(join(dir, `${name}.crlnumber`), '01\n');
  writeFileSync(
    join(dir, `${name}.cnf`),
    `[ca]\ndefault_ca = d\n[d]\ndatabase = ${name}.index\ncrlnumber = ${name}.crlnumber\ndefault_md = sha256\ndefault_crl_days = 7\ncrl_extensions = ext\n[ext]\nauthorityKeyIdentifier = keyid:always\n`,
  );
  run('ca', '-gencrl', '-config', `${name}.cnf`, '-keyfile', `${name}.key`, '-cert', `${name}.pem`, '-out', `${name}.crl.pem`);
  run('crl', '-in', `${name}.crl.pem`, '-outform', 'DER', '-out', `${name}.crl.der`);
  return { root: join(dir, `${name}.pem`), crlPem: join(dir, `${name}.crl.pem`), crlDer: join(dir, `${name}.crl.der`) };
}

describe('fleetkey enrollment crl add|list', () => {
  let cwd: string;
  let server: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'fleetkey-crl-cli-'));
    server = await serve(cwd);
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  test('an OpenSSL-made manufacturer CRL is added (DER) and listed; a CRL of another CA is refused with its code', async () => {
    const acme = opensslCa(cwd, 'acme');
    const other = opensslCa(cwd, 'other');
    const e = await fleetkeyJson(cwd, ['enrollment', 'create', '--label', 'acme robots', '--attestation', 'x509', '--trust-anchor', acme.root]);
    expect(e.enrollment.revocation).toBe('require');
    const id = e.enrollment.id as string;
    const added = await fleetkeyJson(cwd, ['enrollment', 'crl', 'add', id, '--file', acme.crlDer]);
    expect(added).toMatchObject({ enrollmentId: id, crlNumber: '1', entries: 0, source: 'upload' });
    const list = await fleetkeyJson(cwd, ['enrollment', 'crl', 'list', id]);
    expect(list).toMatchObject({ revocation: 'require', crls: [{ crlNumber: '1', stale: false }] });
    const text = await fleetkey(cwd, ['enrollment', 'crl', 'list', id]);
    expect(text.stdout).toContain('revocation: require');
    // The same CRL again (PEM this time) is not newer: refused, exit code 1 with the stable code.
    const again = await fleetkey(cwd, ['enrollment', 'crl', 'add', id, '--file', acme.crlPem]);
    expect([again.code, again.stderr + again.stdout]).toEqual([1, expect.stringContaining('ENROLLMENT_CRL_OUTDATED')]);
    const wrong = await fleetkey(cwd, ['enrollment', 'crl', 'add', id, '--file', other.crlPem]);
    expect([wrong.code, wrong.stderr + wrong.stdout]).toEqual([1, expect.stringContaining('ENROLLMENT_CRL_INVALID')]);
  }, 180_000); // seven CLI processes; each takes seconds on a loaded machine
});
