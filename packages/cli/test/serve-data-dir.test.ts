import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { fleetkey, fleetkeyJson, serve } from './run-cli.js';

describe('fleetkey serve --data-dir', () => {
  let cwd: string;
  beforeEach(() => {
    cwd = mkdtempSync(join(tmpdir(), 'fleetkey-cli-dd-'));
  });
  afterEach(() => rmSync(cwd, { recursive: true, force: true }));

  // Issue 11 item 14: the program-level --data-dir swallowed the option, so the server made a
  // second CA and admin token in ./fleetkey-data while the operator's data dir stayed unused.
  test.each([
    ['after the command', ['--data-dir', 'site-a']],
    ['before the command', []],
  ])('fail: --data-dir %s is the data dir used, and ./fleetkey-data is not created', async (where, args) => {
    const s = where === 'before the command'
      ? await serve(cwd, [], {}, ['--data-dir', 'site-a'])
      : await serve(cwd, args);
    try {
      for (const f of ['admin.token', 'master.key', 'fleetkey.db', 'server.json']) expect(existsSync(join(cwd, 'site-a', f)), f).toBe(true);
      expect(statSync(join(cwd, 'site-a')).mode & 0o777).toBe(0o700);
      expect(existsSync(join(cwd, 'fleetkey-data'))).toBe(false);
      // The CLI finds that server through the same data dir.
      const list = await fleetkeyJson(cwd, ['--data-dir', 'site-a', 'device', 'list']);
      expect(list.devices).toEqual([]);
    } finally {
      await s.stop();
    }
  });

  test('fail: serve on a data dir others can read exits 3, names the dir, its mode and the fix, and creates nothing', async () => {
    const dir = join(cwd, 'shared');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    const r = await fleetkey(cwd, ['serve', '--data-dir', dir, '--port', '0', '--device-port', '0', '--mqtt-port', '0'], { FLEETKEY_LOG_LEVEL: 'silent' });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('SECRET_FILE_EXPOSED');
    expect(r.stderr).toContain(`${dir} has mode 755`);
    expect(r.stderr).toContain(`chmod 700 ${dir}`);
    expect(statSync(dir).mode & 0o777).toBe(0o755);
    expect(existsSync(join(dir, 'master.key'))).toBe(false);
    expect(existsSync(join(cwd, 'fleetkey-data'))).toBe(false);
  });

  test('init under umask 000 creates a 0700 data dir with a 0600 config; into a data dir others can read it refuses', async () => {
    const old = process.umask(0);
    let r;
    try {
      r = await fleetkey(cwd, ['init', '--data-dir', 'fresh'], { FLEETKEY_LOG_LEVEL: 'silent' });
    } finally {
      process.umask(old);
    }
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(join(cwd, 'fresh')).mode & 0o777).toBe(0o700);
    for (const f of ['fleetkey.json', 'master.key', 'admin.token']) expect(statSync(join(cwd, 'fresh', f)).mode & 0o777, f).toBe(0o600);

    mkdirSync(join(cwd, 'open'), { mode: 0o755 });
    chmodSync(join(cwd, 'open'), 0o755);
    const refused = await fleetkey(cwd, ['init', '--data-dir', 'open'], { FLEETKEY_LOG_LEVEL: 'silent' });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain(`chmod 700 ${join(cwd, 'open')}`);
    expect(existsSync(join(cwd, 'open', 'master.key'))).toBe(false);
  });
});
