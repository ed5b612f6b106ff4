import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fleetkey, fleetkeyJson, serve } from './run-cli.js';

describe('enrollments and provisioning, all through the fleetkey binary', () => {
  let cwd: string;
  let server: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'fleetkey-prov-cli-'));
    server = await serve(cwd);
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  test('x509 group: manufacture two robots, both provision, names from the template; disabling stops the next', async () => {
    const e = await fleetkeyJson(cwd, ['enrollment', 'create', '--label', 'line 3 robots', '--attestation', 'x509', '--allocation', 'template:line-03-{id8}', '--tag', 'site=plant-1', '--validity', '7d']);
    const enrollmentId = e.enrollment.id as string;
    expect(e.enrollment).toMatchObject({ kind: 'group', allocation: { type: 'template' }, certificateValidity: '7d' });
    const m = await fleetkeyJson(cwd, ['manufacture', '--count', '3', '--out', join(cwd, 'robots'), '--model', 'kuka-kr16', '--enrollment', enrollmentId]);
    const manifest = JSON.parse(readFileSync(join(cwd, 'robots', 'manifest.json'), 'utf8')) as { devices: { deviceId: string; dir: string }[] };
    expect(manifest.devices).toHaveLength(3);
    expect(m).toMatchObject({ count: 3, attestation: 'x509' });
    expect(m.devices.map((x: { deviceId: string }) => x.deviceId).sort()).toEqual(manifest.devices.map((x) => x.deviceId).sort());
    for (const d of manifest.devices.slice(0, 2)) {
      const r = await fleetkeyJson(cwd, ['agent', 'provision', '--bundle', join(cwd, 'robots', d.dir)]);
      expect(r.deviceId).toBe(d.deviceId);
      expect(r.name).toBe(`line-03-${d.deviceId.slice(0, 8)}`);
    }
    expect((await fleetkeyJson(cwd, ['enrollment', 'show', enrollmentId])).devicesProvisioned).toBe(2);
    await fleetkeyJson(cwd, ['enrollment', 'disable', enrollmentId]);
    const third = manifest.devices[2]!;
    const refused = await fleetkey(cwd, ['agent', 'provision', '--bundle', join(cwd, 'robots', third.dir)]);
    expect(refused.code).toBe(1);
    expect(refused.stderr + refused.stdout).toContain('PROVISIONING_REFUSED');
    const audit = await fleetkeyJson(cwd, ['audit', 'list', '--subject', `device:${third.deviceId}`, '--action', 'provisioning.x509']);
    expect(audit.entries.at(-1)).toMatchObject({ outcome: 'refused', code: 'PROVISIONING_REFUSED' });
    expect(JSON.stringify(audit.entries.at(-1).detail)).toContain('disabled');
  });

  test('symmetric group: the key is shown once; manufactured bundles carry only derived keys', async () => {
    const e = await fleetkeyJson(cwd, ['enrollment', 'create', '--label', 'sensors', '--attestation', 'symmetric', '--allocation', 'pending']);
    expect(e.groupKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const out = join(cwd, 'sensors');
    await fleetkeyJson(cwd, ['manufacture', '--count', '1', '--out', out, '--attestation', 'symmetric', '--enrollment', e.enrollment.id]);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { devices: { deviceId: string; dir: string }[] };
    const dir = join(out, manifest.devices[0]!.dir);
    const bundleFiles = JSON.stringify(readFileSync(join(dir, 'device.json'), 'utf8')) + readFileSync(join(dir, 'device-key.b64'), 'utf8');
    expect(bundleFiles).not.toContain(e.groupKey);
    const r = await fleetkeyJson(cwd, ['agent', 'provision', '--bundle', dir]);
    expect(r).toMatchObject({ deviceId: manifest.devices[0]!.deviceId, name: null });
    const list = await fleetkeyJson(cwd, ['enrollment', 'list']);
    expect(JSON.stringify(list)).not.toContain(e.groupKey);
  });

  test('device evidence show / reset: what admitted a robot, and an admin releasing it with a reason', async () => {
    const e = await fleetkeyJson(cwd, ['enrollment', 'create', '--label', 'evidence robots', '--attestation', 'x509']);
    const out = join(cwd, 'evidence-robots');
    await fleetkeyJson(cwd, ['manufacture', '--count', '1', '--out', out, '--enrollment', e.enrollment.id]);
    const d = (JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { devices: { deviceId: string; dir: string }[] }).devices[0]!;
    await fleetkeyJson(cwd, ['agent', 'provision', '--bundle', join(out, d.dir)]);
    const shown = await fleetkeyJson(cwd, ['device', 'evidence', 'show', d.deviceId]);
    expect(shown).toMatchObject({ deviceId: d.deviceId, current: { method: 'x509', identity: { spkiSha256: expect.stringMatching(/^[0-9a-f]{64}$/) } }, history: [] });
    expect((await fleetkey(cwd, ['device', 'evidence', 'show', d.deviceId])).stdout).toContain('x509 idevidSha256=');
    expect((await fleetkey(cwd, ['device', 'evidence', 'reset', d.deviceId])).code).toBe(2); // --reason is required
    const reset = await fleetkeyJson(cwd, ['device', 'evidence', 'reset', d.deviceId, '--reason', 'controller board replaced']);
    expect(reset).toMatchObject({ current: null, history: [{ method: 'x509', resetReason: 'controller board replaced' }] });
    const again = await fleetkey(cwd, ['device', 'evidence', 'reset', d.deviceId, '--reason', 'twice']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('DEVICE_EVIDENCE_NOT_RECORDED');
  });

  test('individual x509 with a CSV table allocation; bad enrollment definitions are refused', async () => {
    const d = await fleetkeyJson(cwd, ['device', 'create']);
    writeFileSync(join(cwd, 'names.csv'), `deviceId,name\n${d.id},press-7\n`);
    const e = await fleetkeyJson(cwd, ['enrollment', 'create', '--label', 'press 7', '--attestation', 'x509', '--device', d.id, '--allocation', `table:${join(cwd, 'names.csv')}`]);
    expect(e.enrollment.allocation.entries).toEqual({ [d.id]: 'press-7' });
    const bad = await fleetkey(cwd, ['enrollment', 'create', '--label', 'x', '--attestation', 'tpm']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('ENROLLMENT_UNAUTHENTICATED'); // a TPM group trusting no roots would admit any EK
    const badAlloc = await fleetkey(cwd, ['enrollment', 'create', '--label', 'x', '--attestation', 'x509', '--allocation', 'sometimes']);
    expect(badAlloc.code).toBe(3);
  });
});
