/**
 * The README's quick start (manufacture → provision → bind → send → replace) is one continuous
 * walk: its `sh quickstart` block runs here as written, with `fleetkey` the built binary, against
 * `fleetkey serve` started in the same directory, and the outcome is read back through the API.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { adminApi, BIN, serve } from './run-cli.js';

const README = process.env['QUICKSTART_FILE'] ?? fileURLToPath(new URL('../../../README.md', import.meta.url));

function quickstart(): string {
  const m = /^```sh quickstart\n([\s\S]*?)^```$/m.exec(readFileSync(README, 'utf8'));
  if (m === null) throw new Error('README has no ```sh quickstart block');
  return m[1]!;
}

describe('README quick start', () => {
  let cwd: string;
  let server: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'fleetkey-quickstart-'));
    server = await serve(cwd);
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  test('runs as written, and ends with the name on robot B, robot A revoked, both reports under the name', async () => {
    const script = `fleetkey() { "${process.execPath}" "${BIN}" "$@"; }\n${quickstart()}`;
    const r = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile('bash', ['-euo', 'pipefail', '-c', script], { cwd, env: { PATH: process.env['PATH'] ?? '' }, timeout: 170_000 }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, out: `${stdout}\n${stderr}` });
      });
    });
    expect(r.code, r.out).toBe(0);
    const api = adminApi(() => server.url, () => cwd);
    const name = (await api('GET', '/v1/names/line-03-left-welding-12')).body;
    const history = (await api('GET', '/v1/names/line-03-left-welding-12/history')).body;
    const robots = (history.bindings ?? history.history ?? []) as { deviceId: string }[];
    expect(robots.length).toBe(2);
    const [a, b] = [robots.find((x) => x.deviceId !== name.deviceId)!.deviceId, name.deviceId as string];
    expect((await api('GET', `/v1/devices/${a}`)).body.status).toBe('revoked');
    expect((await api('GET', `/v1/devices/${b}`)).body.status).toBe('active');
    const points = (await api('GET', '/v1/data/diagnostics?name=line-03-left-welding-12')).body.points as { deviceId: string; payload: { partsPerHour: number } }[];
    expect(points.map((p) => [p.deviceId, p.payload.partsPerHour]).sort((x, y) => Number(x[1]) - Number(y[1]))).toEqual([
      [a, 42],
      [b, 44],
    ]);
  });
});
