import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fleetkey, fleetkeyJson, serve } from './run-cli.js';

const DAY = 86_400_000;

describe('the root CRL through the fleetkey binary, with the root key kept offline', () => {
  let cwd: string;
  let server: Awaited<ReturnType<typeof serve>>;

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'fleetkey-root-crl-'));
    server = await serve(cwd);
    writeFileSync(join(cwd, 'pass'), 'correct horse battery staple\n', { mode: 0o600 });
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  test('fail: once the root key is removed the server cannot re-sign; the operator signs with the exported key and the server serves it', async () => {
    await fleetkeyJson(cwd, ['ca', 'export', '--root-key', '--passphrase-file', join(cwd, 'pass'), '--out', join(cwd, 'root.enc')]);
    await fleetkeyJson(cwd, ['ca', 'remove-root-key']);
    const refused = await fleetkey(cwd, ['ca', 'sign-root-crl']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('CA_ROOT_OFFLINE');
    const r = await fleetkeyJson(cwd, ['ca', 'sign-root-crl', '--root-key', join(cwd, 'root.enc'), '--passphrase-file', join(cwd, 'pass'), '--validity', '500d']);
    expect(r.crlNumber).toBe(2); // the first start signed number 1
    expect(Date.parse(r.nextUpdate) - Date.now()).toBeGreaterThan(499 * DAY);
  }, 120_000);
});
