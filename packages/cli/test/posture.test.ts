import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fleetkey, fleetkeyJson, serve } from './run-cli.js';

describe('fleetkey posture', () => {
  let cwd: string;
  let server: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'fleetkey-cli-posture-'));
    server = await serve(cwd);
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  test('fail: a bad --expiring-days, --ids or --fail-on is a usage error (exit 2) and never reaches the server', async () => {
    for (const args of [['--expiring-days', '0'], ['--fail-on', 'severe']]) {
      expect((await fleetkey(cwd, ['posture', ...args])).code, args.join(' ')).toBe(2);
    }
  });

  test('--json gives every finding with its count and ids; the human form lists what was found and what was not checked', async () => {
    const r = await fleetkeyJson(cwd, ['posture', '--expiring-days', '10', '--ids', '2']);
    expect(r.expiringDays).toBe(10);
    const hsm = r.findings.find((f: { id: string }) => f.id === 'ca.keys-not-in-hsm');
    expect([hsm.count, hsm.ids.length, hsm.truncated]).toEqual([3, 2, true]);
    expect(r.notChecked).toEqual([]); // every family has a provider on a default server
    expect(r.findings.find((f: { id: string }) => f.id === 'devices.never-attested').count).toBe(0); // the attestation module's provider ran
    expect(r.findings.find((f: { id: string }) => f.id === 'devices.release-below-floor').count).toBe(0); // and the updates module's
    const human = await fleetkey(cwd, ['posture']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/high\s+3\s+ca\.keys-not-in-hsm/);
    expect(human.stdout).not.toContain('NOT CHECKED');
  });

  test('--fail-on exits 4 when a finding at or above the severity is present, 0 otherwise', async () => {
    expect((await fleetkey(cwd, ['posture', '--fail-on', 'high'])).code).toBe(4);
    expect((await fleetkey(cwd, ['posture', '--fail-on', 'critical'])).code).toBe(0);
  });
});
