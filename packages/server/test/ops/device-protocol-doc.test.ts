/**
 * docs/device-protocol.md lets a device without the SDK provision and connect: every `sh` block
 * of the page runs here as written (openssl, curl, mosquitto_pub and POSIX tools only), for a
 * symmetric-key device and for an X.509 device whose birth-certificate key was exported as
 * encrypted PKCS#8 by `fleetkey device key export`, and the message it published is read back
 * through the operator API.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { bundleOf } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const DOC = fileURLToPath(new URL('../../../../docs/device-protocol.md', import.meta.url));
const BIN = fileURLToPath(new URL('../../../cli/bin/fleetkey.js', import.meta.url));

/** The `sh` blocks of the page whose info string names `flow`, in order. */
function blocks(flow: 'symmetric' | 'x509'): string {
  const out: string[] = [];
  for (const m of readFileSync(DOC, 'utf8').matchAll(/^```sh ([^\n]*)\n([\s\S]*?)^```$/gm)) {
    if (m[1]!.split(' ').includes(flow)) out.push(m[2]!);
  }
  return out.join('\n');
}

function run(file: string, args: string[], cwd: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

const sh = (script: string, cwd: string, env: Record<string, string>) => run('bash', ['-euo', 'pipefail', '-c', script], cwd, env);

describe.each(DIALECTS)('docs/device-protocol.md, run as written (%s)', (dialect) => {
  let t: TestServer;
  let dir: string;
  beforeAll(async () => {
    t = await startTestServer(dialect);
    dir = mkdtempSync(join(tmpdir(), 'fleetkey-devproto-'));
  });
  afterAll(async () => {
    await t?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const stored = async (id: string) => (await t.call('GET', `/v1/data/diagnostics?deviceId=${id}`)).body.points as { payload: Record<string, unknown> }[];

  test('the page has both flows and the shared publishing block', () => {
    expect(blocks('symmetric')).toContain('/device/v1/provision/symmetric');
    expect(blocks('symmetric')).toContain('mosquitto_pub');
    expect(blocks('x509')).toContain('/device/v1/provision/x509');
    expect(blocks('x509')).toContain('mosquitto_pub');
  });

  test('symmetric key: openssl + curl provision, mosquitto_pub publishes, the message is stored; the same token is refused twice', async () => {
    const g = await t.call('POST', '/v1/enrollments', { body: { label: 'sensors', kind: 'group', attestation: 'symmetric' } });
    expect(g.status).toBe(201);
    const id = (await t.call('POST', '/v1/devices', { body: { model: 'c-sensor' } })).body.id as string;
    const key = (await t.call('POST', `/v1/enrollments/${g.body.enrollment.id}/derived-keys`, { body: { deviceId: id } })).body.deviceKey as string;
    const cwd = mkdtempSync(join(dir, 'sym-'));
    writeFileSync(join(cwd, 'ca-bundle.pem'), bundleOf(t));
    const r = await sh(blocks('symmetric'), cwd, { FLEETKEY_DEVICE_URL: t.server.deviceUrl, DEVICE_ID: id, DEVICE_KEY: key });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const points = await stored(id);
    expect(points.map((p) => p.payload)).toEqual([{ partsPerHour: 42, source: 'mosquitto_pub' }]);
    // [replay] The token in request.json was used: sending the same request again is refused.
    const again = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', 'ca-bundle.pem', '-H', 'content-type: application/json', '--data', '@request.json', `${t.server.deviceUrl}/device/v1/provision/symmetric`], cwd, {});
    expect(again.stdout).toBe('403');
  });

  test('x509: fleetkey manufacture, the IDevID key exported as encrypted PKCS#8, then openssl + curl (mTLS) + mosquitto_pub', async () => {
    const g = await t.call('POST', '/v1/enrollments', { body: { label: 'robots', kind: 'group', attestation: 'x509' } });
    expect(g.status).toBe(201);
    const out = join(dir, `bundles-${dialect}`);
    const cli = ['--url', t.url, '--token', t.adminToken];
    const m = await run(process.execPath, [BIN, ...cli, 'manufacture', '--count', '1', '--out', out, '--enrollment', g.body.enrollment.id, '--provisioning-url', t.server.deviceUrl, '--json'], dir, {});
    expect(m.code, m.stderr).toBe(0);
    const entry = (JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { devices: { deviceId: string; dir: string }[] }).devices[0]!;
    const bundle = join(out, entry.dir);
    const cwd = mkdtempSync(join(dir, 'x509-'));
    writeFileSync(join(cwd, 'pass.txt'), 'correct horse battery staple\n', { mode: 0o600 });
    const exported = await run(process.execPath, [BIN, 'device', 'key', 'export', '--bundle', bundle, '--key', 'idevid', '--passphrase-file', join(cwd, 'pass.txt'), '--out', join(cwd, 'idevid.p8')], cwd, {});
    expect(exported.code, exported.stderr).toBe(0);
    const p8 = readFileSync(join(cwd, 'idevid.p8'), 'utf8');
    expect(p8).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    // Standard PKCS#8: OpenSSL reads it with the passphrase and refuses it without.
    expect((await run('openssl', ['pkey', '-in', 'idevid.p8', '-passin', 'file:pass.txt', '-noout'], cwd, {})).code).toBe(0);
    expect((await run('openssl', ['pkey', '-in', 'idevid.p8', '-passin', 'pass:wrong-passphrase', '-noout'], cwd, {})).code).not.toBe(0);
    copyFileSync(join(bundle, 'idevid-chain.pem'), join(cwd, 'idevid-chain.pem'));
    copyFileSync(join(bundle, 'ca-bundle.pem'), join(cwd, 'ca-bundle.pem'));
    const r = await sh(blocks('x509'), cwd, { FLEETKEY_DEVICE_URL: t.server.deviceUrl, DEVICE_ID: entry.deviceId });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect((await stored(entry.deviceId)).map((p) => p.payload)).toEqual([{ partsPerHour: 42, source: 'mosquitto_pub' }]);
  });

  test('fail: a key export with neither a passphrase nor --unencrypted is refused, and nothing is written', async () => {
    const r = await run(process.execPath, [BIN, 'device', 'key', 'export', '--bundle', dir, '--out', join(dir, 'plain.pem')], dir, {});
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('--passphrase-file');
    expect(() => readFileSync(join(dir, 'plain.pem'))).toThrow();
  });
});
