/**
 * Issue 13 through the fleetkey binary: an operator sets a model's attestation policy, lists it,
 * reads a device's attestation status, and a malformed reference value is a usage error.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fleetkey, fleetkeyJson, serve } from './run-cli.js';

const hex = (s: string) => createHash('sha256').update(s).digest('hex');

describe('fleetkey attestation', () => {
  let cwd: string;
  let server: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'fleetkey-cli-att-'));
    server = await serve(cwd);
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  test('policy set, list; device attestation shows a device that never attested', async () => {
    const p = await fleetkeyJson(cwd, ['attestation', 'policy', 'set', '--scope', 'model', '--key', 'kuka-kr16', '--pcrs', '0,7', '--reference', `0=${hex('fw')}`, '--reference', `7=${hex('sb')},${hex('sb2')}`, '--interval', '60', '--on-failure', 'quarantine', '--require-on-connect']);
    expect(p).toMatchObject({ scope: 'model', key: 'kuka-kr16', pcrs: [0, 7], reference: { '0': [hex('fw')], '7': [hex('sb'), hex('sb2')] }, intervalSeconds: 60, maxAgeSeconds: 120, onFailure: 'quarantine', onStale: 'alert', requireOnConnect: true });
    const list = await fleetkeyJson(cwd, ['attestation', 'policy', 'list']);
    expect(list.policies).toHaveLength(1);
    const d = await fleetkeyJson(cwd, ['device', 'create', '--model', 'kuka-kr16']);
    const a = await fleetkeyJson(cwd, ['device', 'attestation', d.id]);
    expect(a).toMatchObject({ deviceId: d.id, status: 'never', quarantined: false, history: [] });
    const human = await fleetkey(cwd, ['device', 'attestation', d.id]);
    expect(human.stdout).toMatch(/status\s+never/);
  });

  test('fail: a malformed reference is a usage error (exit 2); a policy that judges nothing is refused by the server (exit 1)', async () => {
    expect((await fleetkey(cwd, ['attestation', 'policy', 'set', '--scope', 'model', '--key', 'x', '--pcrs', '7', '--reference', '7=zz', '--interval', '60', '--on-failure', 'alert'])).code).toBe(2);
    const r = await fleetkey(cwd, ['attestation', 'policy', 'set', '--scope', 'model', '--key', 'x', '--pcrs', '7', '--interval', '60', '--on-failure', 'alert']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ATTESTATION_POLICY_INVALID/);
  });
});
