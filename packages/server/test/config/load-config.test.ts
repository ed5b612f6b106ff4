import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, loadConfig } from '@fleetkey/server';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { codeOf } from '../support/ctx.js';

describe('configuration', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fleetkey-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const writeConfig = (content: unknown, mode = 0o600) => {
    const file = join(dir, 'fleetkey.json');
    writeFileSync(file, JSON.stringify(content));
    chmodSync(file, mode);
    return file;
  };
  const load = (env: Record<string, string> = {}) => () => loadConfig({ env, overrides: { dataDir: dir } });
  const codeOfSync = (f: () => unknown) => codeOf(Promise.resolve().then(f));

  test('defaults: loopback, port 8400, SQLite', () => {
    const c = loadConfig({ env: {}, overrides: { dataDir: dir } });
    expect(c.http).toMatchObject({ host: '127.0.0.1', port: 8400 });
    expect(c.databaseUrl).toBeUndefined();
  });

  test('file, then environment, then flags', () => {
    writeConfig({ http: { port: 9001 }, logLevel: 'warn' });
    expect(loadConfig({ env: {}, overrides: { dataDir: dir } }).http.port).toBe(9001);
    expect(loadConfig({ env: { FLEETKEY_PORT: '9002' }, overrides: { dataDir: dir } }).http.port).toBe(9002);
    expect(loadConfig({ env: { FLEETKEY_PORT: '9002' }, overrides: { dataDir: dir, port: 9003 } }).http.port).toBe(9003);
  });

  test('fail: unknown keys, wrong types and bad values stop the start', async () => {
    writeConfig({ http: { port: 'eighty' } });
    expect(await codeOfSync(load())).toBe('CONFIG_INVALID');
    writeConfig({ htpp: { port: 1 } });
    expect(await codeOfSync(load())).toBe('CONFIG_INVALID');
    writeConfig({ logLevel: 'chatty' });
    expect(await codeOfSync(load())).toBe('CONFIG_INVALID');
    writeConfig({});
    expect(await codeOfSync(load({ DATABASE_URL: 'mysql://root@localhost/x' }))).toBe('CONFIG_INVALID');
    expect(await codeOfSync(load({ FLEETKEY_PORT: '70000' }))).toBe('CONFIG_INVALID');
  });

  test('fail: a config file others can read is refused, and the error names no secret', async () => {
    writeConfig({ databaseUrl: 'postgres://u:hunter2@127.0.0.1/db' }, 0o644);
    const err = (await Promise.resolve().then(load()).catch((e: unknown) => e)) as { code: string; message: string; detail: string };
    expect(err).toMatchObject({ code: 'SECRET_FILE_EXPOSED' });
    expect(err.detail).toContain('chmod 600');
    expect(`${err.message} ${err.detail}`).not.toContain('hunter2');
  });

  test('fail: the server refuses to start with a master key file readable by others', async () => {
    writeFileSync(join(dir, 'master.key'), `${Buffer.alloc(32, 7).toString('base64')}\n`, { mode: 0o644 });
    chmodSync(join(dir, 'master.key'), 0o644);
    const config = loadConfig({ env: { FLEETKEY_LOG_LEVEL: 'silent' }, overrides: { dataDir: dir, port: 0 } });
    expect(await codeOf(createServer(config))).toBe('SECRET_FILE_EXPOSED');
  });

  test('fail: a malformed FLEETKEY_MASTER_KEY is refused', async () => {
    const config = loadConfig({ env: { FLEETKEY_LOG_LEVEL: 'silent' }, overrides: { dataDir: dir, port: 0 } });
    expect(await codeOf(createServer(config, { env: { FLEETKEY_MASTER_KEY: 'c2hvcnQ=' } }))).toBe('MASTER_KEY_INVALID');
  });
});
