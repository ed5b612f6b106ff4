/**
 * Issue 14: a command that talks to a server starts and answers in ≤ 0.3 s on an idle machine.
 * What makes it so is checked exactly (the modules a command loads: never the server stack, the
 * crypto stack, the device SDK or the schema library); the time itself is measured against a bare
 * `node -e 0` in the same loop and held to a bound generous enough for a loaded CI machine.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { measure } from '../../../bench/cli/measure.mjs';
import { BIN, fleetkey, serve } from './run-cli.js';

const RECORDER = fileURLToPath(new URL('./support/record-imports.mjs', import.meta.url));

/** The module URLs `fleetkey args…` resolved, relative to the repository. */
async function importsOf(cwd: string, args: string[]): Promise<string[]> {
  const log = join(cwd, `imports-${Math.random().toString(36).slice(2)}.txt`);
  const { execFile } = await import('node:child_process');
  await new Promise<void>((resolve) => {
    execFile(process.execPath, ['--import', RECORDER, BIN, ...args], { cwd, env: { PATH: process.env['PATH'] ?? '', FLEETKEY_IMPORT_LOG: log } }, () => resolve());
  });
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  return [...new Set(readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('file://')).map((l) => fileURLToPath(l).replace(root, '')))];
}

const HEAVY = [/packages\/server\//, /packages\/crypto\//, /packages\/device\//, /node_modules\/(fastify|kysely|better-sqlite3|pg|@peculiar|@sinclair|mqtt|pino|prom-client)\//];

describe('CLI start time', () => {
  let cwd: string;
  let server: Awaited<ReturnType<typeof serve>>;
  let g: string[];
  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'fleetkey-cli-start-'));
    server = await serve(cwd);
    g = ['--url', server.url, '--token', readFileSync(join(cwd, 'fleetkey-data', 'admin.token'), 'utf8').trim()];
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  test('control: `agent --help` loads the device SDK (the recorder sees heavy modules)', async () => {
    const loaded = await importsOf(cwd, ['agent', '--help']);
    expect(loaded.some((f) => f.startsWith('packages/device/'))).toBe(true);
  });

  test.each([
    ['device', 'list'],
    ['name', 'list'],
    ['audit', 'verify'],
    ['enrollment', 'list'],
  ])('fail: `fleetkey %s %s` loads none of the server, crypto, device or schema stacks', async (...cmd) => {
    const loaded = await importsOf(cwd, [...g, ...cmd]);
    expect(loaded.some((f) => f.startsWith('packages/cli/dist/commands/'))).toBe(true);
    expect(loaded.filter((f) => HEAVY.some((h) => h.test(f)))).toEqual([]);
  });

  test('name list --tag and --after (issue 14)', async () => {
    for (const [name, line] of [['w-1', '03'], ['w-2', '04'], ['w-3', '03']] as const) {
      expect((await fleetkey(cwd, [...g, 'name', 'create', name, '--tag', `line=${line}`])).code).toBe(0);
    }
    const names = async (...args: string[]) => (JSON.parse((await fleetkey(cwd, [...g, '--json', 'name', 'list', ...args])).stdout) as { names: { name: string }[] }).names.map((n) => n.name);
    expect(await names('--tag', 'line=03')).toEqual(['w-1', 'w-3']);
    expect(await names('--tag', 'line=03', '--after', 'w-1')).toEqual(['w-3']);
    expect(await names('--after', 'w-2')).toEqual(['w-3']);
  });

  test('--version prints the package version without a server', async () => {
    const r = await fleetkey(cwd, ['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version);
  });

  test('fail: --json reports an unreachable server as JSON on stdout, exit 3', async () => {
    const r = await fleetkey(cwd, ['--json', 'device', 'list', '--url', 'http://127.0.0.1:9']);
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'UNREACHABLE', url: 'http://127.0.0.1:9' } });
  });

  test('a server-talking command answers within a bound of a bare node start (figures printed)', async () => {
    const r = await measure([{ label: 'device list', args: [...g, 'device', 'list', '--limit', '10'] }], { runs: 5, env: { PATH: process.env['PATH'] ?? '' } });
    const base = r['baseline']!.median;
    const cmd = r['device list']!.median;
    process.stderr.write(
      `fleetkey device list: wall median ${cmd.toFixed(0)} ms (min ${r['device list']!.min.toFixed(0)}), CPU ${r['device list']!.cpuMedian.toFixed(0)} ms; bare node -e 0: wall median ${base.toFixed(0)} ms (min ${r['baseline']!.min.toFixed(0)}), CPU ${r['baseline']!.cpuMedian.toFixed(0)} ms\n`,
    );
    // CPU time hardly depends on the load: loading the server stack (before issue 14) cost ~2 s of it.
    expect(r['device list']!.cpuMedian).toBeLessThan(r['baseline']!.cpuMedian * 4 + 200);
    // Idle, the goal is 300 ms (bench/cli records it). A loaded 2-core CI machine slows every
    // process start alike, so the bound is relative to the bare start measured beside it: the
    // whole server stack loaded (the state before issue 14) costs several times a bare start.
    expect(cmd).toBeLessThan(base * 4 + 300);
  });
});
