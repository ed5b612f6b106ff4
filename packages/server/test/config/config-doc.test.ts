/**
 * Issue 14: every setting (file key, environment variable, flag) is documented in docs/config.md,
 * generated from the config schema; this test keeps the two equal, checks each documented
 * variable and flag really sets its setting, and that a bad value is refused with the setting,
 * where it came from and the fix.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '@fleetkey/server';
import { Kind, type TSchema } from '@sinclair/typebox';
import { afterAll, describe, expect, test } from 'vitest';
import { serveCommand } from '../../../cli/src/commands/serve.js';
import { allSettings, renderConfigReference } from '../../src/config/config-reference.js';

const DOC = fileURLToPath(new URL('../../../../docs/config.md', import.meta.url));

/** A valid value for a setting that differs from its default. */
function sample(s: TSchema): { env: string; value: unknown } {
  const kind = s[Kind] as string;
  if (kind === 'Integer') {
    const v = s['default'] === 8400 || s['default'] === 8443 || s['default'] === 8883 ? 9123 : ((s['minimum'] as number | undefined) ?? 0) + 1;
    return { env: String(v), value: v };
  }
  if (kind === 'Union') return { env: 'debug', value: 'debug' };
  if (kind === 'String' && typeof s['pattern'] === 'string' && s['pattern'].startsWith('^postgres')) return { env: 'postgres://u@127.0.0.1:5432/x', value: 'postgres://u@127.0.0.1:5432/x' };
  if (kind === 'String' && typeof s['pattern'] === 'string' && s['pattern'].startsWith('^nats')) return { env: 'nats://127.0.0.1:4222', value: 'nats://127.0.0.1:4222' };
  return { env: '0.0.0.0', value: '0.0.0.0' };
}

const get = (o: unknown, path: string): unknown => path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], o);

describe('config reference', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-config-doc-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('docs/config.md is generated from the schema', () => {
    const expected = renderConfigReference();
    if (process.env['UPDATE_DOCS'] === '1') writeFileSync(DOC, expected);
    expect(readFileSync(DOC, 'utf8')).toBe(expected);
  });

  test('fail: every setting has a description, and every one is in the document', () => {
    const doc = readFileSync(DOC, 'utf8');
    for (const s of allSettings()) {
      expect(s.description, s.path).toMatch(/\S/);
      expect(doc, s.path).toContain(`| \`${s.path}\` |`);
    }
  });

  test.each(allSettings().filter((s) => s.env !== undefined && s.path !== 'dataDir').map((s) => [s.env!, s] as const))('environment variable %s sets its setting', (name, s) => {
    const v = sample(s.schema);
    expect(get(loadConfig({ env: { [name]: v.env }, overrides: { dataDir: dir } }), s.path)).toEqual(v.value);
  });

  test('FLEETKEY_DATA_DIR sets the data dir', () => {
    expect(loadConfig({ env: { FLEETKEY_DATA_DIR: join(dir, 'elsewhere') } }).dataDir).toBe(join(dir, 'elsewhere'));
  });

  test('every documented flag is a `fleetkey serve` option, and every serve option that sets a setting is documented', () => {
    const documented = allSettings().flatMap((s) => (s.flag === undefined ? [] : [s.flag])).sort();
    const offered = serveCommand()
      .options.map((o) => o.long!)
      // --config names the file itself; --workers is a process count, not a setting.
      .filter((f) => f !== '--config' && f !== '--workers')
      .sort();
    expect(offered).toEqual(documented);
  });

  test('fail: a bad value names the setting, its source (file, variable or flag) and the fix, never the value', () => {
    const file = join(dir, 'fleetkey.json');
    writeFileSync(file, JSON.stringify({ http: { port: 99999, bogus: 1 }, databaseUrl: 'mysql://root:hunter2@db/x' }));
    chmodSync(file, 0o600);
    const err = (() => {
      try {
        loadConfig({ file, env: { FLEETKEY_LOG_LEVEL: 'chatty' }, overrides: { dataDir: dir, mqttPort: -1 } });
      } catch (e) {
        return e as { code: string; detail: string };
      }
      throw new Error('accepted');
    })();
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.detail).toContain(`http.port (in ${file}): `);
    expect(err.detail).toContain('fix: use a value of the form: integer 0–65535');
    expect(err.detail).toContain(`http.bogus (in ${file}): unknown setting; fix: remove it`);
    expect(err.detail).toContain('logLevel (in environment variable FLEETKEY_LOG_LEVEL)');
    expect(err.detail).toContain('gateway.port (in flag --mqtt-port)');
    expect(err.detail).not.toContain('hunter2');
  });
});
