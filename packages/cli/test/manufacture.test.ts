/**
 * The factory station and the device, through the built `fleetkey` binary against `fleetkey
 * serve`: `manufacture --count 3` with a manufacturing-role token, then `agent provision
 * --bundle` on one of the bundles over the real device plane (mTLS with the IDevID).
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { adminApi, fleetkey, fleetkeyJson, serve } from './run-cli.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
describe('manufacture and provision through the fleetkey binary', () => {
  let cwd: string;
  let server: Awaited<ReturnType<typeof serve>>;
  let admin: string;
  let factory: Record<string, string>;
  let x509Enrollment: string;

  const api = adminApi(() => server.url, () => cwd);

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'fleetkey-manufacture-'));
    server = await serve(cwd);
    admin = readFileSync(join(cwd, 'fleetkey-data', 'admin.token'), 'utf8').trim();
    const token = await fleetkeyJson(cwd, ['token', 'create', '--role', 'manufacturing', '--name', 'station-1']);
    // The station runs with the manufacturing role only, as on a factory floor.
    factory = { FLEETKEY_TOKEN: token.secret };
    const e = await api('POST', '/v1/enrollments', { label: 'robots', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'robot-{id8}' } });
    expect(e.status).toBe(201);
    x509Enrollment = e.body.enrollment.id;
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  test('fail: usage errors are refused before anything is registered', async () => {
    const noCount = await fleetkey(cwd, ['manufacture', '--out', join(cwd, 'none')], factory);
    expect(noCount.code).toBe(2);
    const badCount = await fleetkey(cwd, ['manufacture', '--count', '0', '--out', join(cwd, 'none')], factory);
    expect(badCount.code).not.toBe(0);
    expect(badCount.stderr).toContain('--count');
    const sym = await fleetkey(cwd, ['manufacture', '--count', '1', '--out', join(cwd, 'none'), '--attestation', 'symmetric'], factory);
    expect(sym.code).not.toBe(0);
    expect(sym.stderr).toContain('--enrollment');
    const wrongType = await fleetkey(cwd, ['manufacture', '--count', '1', '--out', join(cwd, 'none'), '--attestation', 'symmetric', '--enrollment', x509Enrollment], factory);
    expect(wrongType.code).not.toBe(0);
    expect(wrongType.stderr).toContain('x509');
    expect(existsSync(join(cwd, 'none'))).toBe(false);
    expect((await api('GET', '/v1/devices')).body.devices).toHaveLength(0);
  });

  test('fail: an operator without the manufacturing permission cannot run a station', async () => {
    const viewer = await fleetkeyJson(cwd, ['token', 'create', '--role', 'viewer']);
    const r = await fleetkey(cwd, ['manufacture', '--count', '1', '--out', join(cwd, 'viewer')], { FLEETKEY_TOKEN: viewer.secret });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('FORBIDDEN');
  });

  let out: string;
  let summary: any;

  test('manufacture --count 3 writes three bundles (0700/0600), IDevIDs from the manufacturing CA, and a manifest', async () => {
    out = join(cwd, 'batch-1');
    summary = await fleetkeyJson(cwd, ['manufacture', '--count', '3', '--out', out, '--model', 'kuka-kr16', '--serial-prefix', 'KR16-', '--enrollment', x509Enrollment], factory);
    expect(summary.count).toBe(3);
    expect(summary.devicesPerSecond).toBeGreaterThan(0);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(manifest.version).toBe(1);
    expect(manifest.devices.map((d: any) => d.serials.unit)).toEqual(['KR16-000001', 'KR16-000002', 'KR16-000003']);
    for (const d of manifest.devices) {
      expect(d.deviceId).toMatch(UUID);
      expect(d.idevidFingerprint).toMatch(/^[0-9a-f]{64}$/);
      const dir = join(out, d.dir);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      for (const f of readdirSync(dir)) {
        const st = statSync(join(dir, f));
        expect(st.mode & 0o777, f).toBe(st.isDirectory() ? 0o700 : 0o600);
      }
      expect(readdirSync(dir).sort()).toEqual(['ca-bundle.pem', 'device.json', 'idevid-chain.pem', 'keys', 'machine.secret']);
      const device = JSON.parse(readFileSync(join(dir, 'device.json'), 'utf8'));
      expect(device).toMatchObject({ deviceId: d.deviceId, attestation: 'x509', enrollmentId: x509Enrollment, idevidKeyLabel: 'idevid', provisioningUrl: expect.stringMatching(/^https:\/\/127\.0\.0\.1:\d+$/) });
      // The birth certificate chains through the manufacturing CA to our root.
      const chain = readFileSync(join(dir, 'idevid-chain.pem'), 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)!;
      writeFileSync(join(cwd, 'leaf.pem'), chain[0]!);
      writeFileSync(join(cwd, 'mfg.pem'), chain.slice(1).join(''));
      execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca-bundle.pem'), '-untrusted', join(cwd, 'mfg.pem'), join(cwd, 'leaf.pem')], { stdio: 'pipe' });
      // IEEE 802.1AR: by default a birth certificate lives as long as the robot (RFC 5280 §4.1.2.5).
      expect(new X509Certificate(chain[0]!).validTo).toBe('Dec 31 23:59:59 9999 GMT');
      const reg = await api('GET', `/v1/devices/${d.deviceId}`);
      expect(reg.body).toMatchObject({ model: 'kuka-kr16', status: 'manufactured', serials: d.serials });
    }
  });

  test('agent provision --bundle provisions one robot over mTLS and prints its identity', async () => {
    const id = summary.devices[0].deviceId as string;
    const r = await fleetkeyJson(cwd, ['agent', 'provision', '--bundle', join(out, id)]);
    expect(r.deviceId).toBe(id);
    expect(r.name).toBe(`robot-${id.slice(0, 8)}`);
    expect(r.serial).toMatch(/^[0-9a-f]+$/);
    expect(Date.parse(r.notAfter)).toBeGreaterThan(Date.now());
    expect(readdirSync(join(out, id)).sort()).toEqual(['ca-bundle.pem', 'device.json', 'idevid-chain.pem', 'keys', 'machine.secret', 'operational-chain.pem', 'provisioned.json']);
    const cert = (await api('GET', `/v1/certificates/${r.serial}`)).body;
    expect(cert).toMatchObject({ deviceId: id, kind: 'operational', status: 'valid' });
    const human = await fleetkey(cwd, ['agent', 'provision', '--bundle', join(out, id)]);
    expect(human.code).toBe(0); // re-provisioning under the default policy keeps the binding
    expect(human.stdout).toContain(`robot-${id.slice(0, 8)}`);
  });

  test('fail: a revoked robot is refused with exit 1 and the code; an unreachable plane gives up with exit 3', async () => {
    const id = summary.devices[1].deviceId as string;
    expect((await api('POST', `/v1/devices/${id}/revoke`, { reason: 'scrapped' })).status).toBe(200);
    const r = await fleetkey(cwd, ['agent', 'provision', '--bundle', join(out, id)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('PROVISIONING_REFUSED');
    expect(r.stderr).not.toContain('attempt');

    const other = join(out, summary.devices[2].deviceId as string);
    const device = JSON.parse(readFileSync(join(other, 'device.json'), 'utf8'));
    writeFileSync(join(other, 'device.json'), JSON.stringify({ ...device, provisioningUrl: 'https://127.0.0.1:9' }), { mode: 0o600 });
    const dead = await fleetkey(cwd, ['agent', 'provision', '--bundle', other, '--max-attempts', '2', '--json']);
    expect(dead.code).toBe(3);
    expect(JSON.parse(dead.stdout).error).toMatchObject({ code: 'UNAVAILABLE', attempts: 2 });
    expect(dead.stderr).toContain('attempt 1 failed');
  });

  test('symmetric: bundles carry the derived key, never the group key, and provision', async () => {
    const e = await api('POST', '/v1/enrollments', { label: 'sensors', kind: 'group', attestation: 'symmetric' });
    const groupKey = e.body.groupKey as string;
    const dir = join(cwd, 'sensors');
    const s = await fleetkeyJson(cwd, ['manufacture', '--count', '2', '--out', dir, '--attestation', 'symmetric', '--enrollment', e.body.enrollment.id, '--model', 'env-sensor'], factory);
    for (const d of s.devices) {
      const files = readdirSync(join(dir, d.deviceId));
      expect(files).toContain('device-key.b64');
      expect(files).not.toContain('idevid-chain.pem');
      for (const f of files.filter((x) => !statSync(join(dir, d.deviceId, x)).isDirectory())) {
        expect(readFileSync(join(dir, d.deviceId, f), 'latin1')).not.toContain(groupKey);
      }
    }
    const r = await fleetkeyJson(cwd, ['agent', 'provision', '--bundle', join(dir, s.devices[0].deviceId)]);
    expect(r.deviceId).toBe(s.devices[0].deviceId);
  });

  test('fail: a bundle readable by others is refused before any network traffic (exit 3)', async () => {
    const id = summary.devices[0].deviceId as string;
    execFileSync('chmod', ['644', join(out, id, 'machine.secret')]);
    const r = await fleetkey(cwd, ['agent', 'provision', '--bundle', join(out, id)]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('KEY_FILE_PERMISSIONS');
  });

  test('manufacture --idevid-validity 3650d gives the run ten-year birth certificates instead of unlimited ones; a bad value is a usage error', async () => {
    const bad = await fleetkey(cwd, ['manufacture', '--count', '1', '--out', join(cwd, 'none'), '--idevid-validity', 'forever'], factory);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--idevid-validity');
    expect(existsSync(join(cwd, 'none'))).toBe(false);
    const dir = join(cwd, 'ten-years');
    const s = await fleetkeyJson(cwd, ['manufacture', '--count', '1', '--out', dir, '--enrollment', x509Enrollment, '--idevid-validity', '3650d'], factory);
    const leaf = readFileSync(join(dir, s.devices[0].deviceId, 'idevid-chain.pem'), 'utf8');
    const life = Date.parse(new X509Certificate(leaf).validTo) - Date.now();
    expect(life).toBeGreaterThan(3649 * 86_400_000);
    expect(life).toBeLessThan(3651 * 86_400_000);
  }, 60_000);
});
