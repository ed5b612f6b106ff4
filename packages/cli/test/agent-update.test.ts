/**
 * `fleetkey agent run --install-command CMD` through the built binary against `fleetkey serve`:
 * a provisioned robot checks the image repository and the director, runs CMD on the verified
 * file, reports `installed` over MQTT (the registry then answers `device list --version`), checks
 * again when told (`update.check` command), and a failing CMD is reported `failed` with
 * UPDATE_INSTALL_FAILED.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { initRepo, offlineKeys, publishRelease } from '../../server/test/updates/support/repo.js';
import type { TestServer } from '../../server/test/support/test-server.js';
import { adminApi, BIN, fleetkeyJson, serve } from './run-cli.js';

function agent(cwd: string, args: string[]) {
  const proc: ChildProcess = spawn(process.execPath, [BIN, 'agent', 'run', ...args], { cwd, env: { PATH: process.env['PATH'] ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const lines = () => out.split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l));
  const waitFor = async (pred: (l: any) => boolean, ms = 20_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const hit = lines().find(pred);
      if (hit !== undefined) return hit;
      if (Date.now() > end || proc.exitCode !== null) throw new Error(`no matching line; stdout=${out} stderr=${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = () => new Promise<number>((r) => (proc.exitCode !== null ? r(proc.exitCode) : (proc.once('exit', (c) => r(c ?? -1)), proc.kill('SIGTERM'))));
  return { proc, lines, waitFor, stop, stderr: () => err };
}

describe('fleetkey agent run --install-command', () => {
  let cwd: string;
  let server: Awaited<ReturnType<typeof serve>>;
  let admin: string;
  let bundle: string;
  let deviceId: string;
  const api = adminApi(() => server.url, () => cwd);

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'fleetkey-agent-update-'));
    server = await serve(cwd);
    admin = readFileSync(join(cwd, 'fleetkey-data', 'admin.token'), 'utf8').trim();
    const e = await api('POST', '/v1/enrollments', { label: 'robots', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'robot-{id8}' } });
    const s = await fleetkeyJson(cwd, ['manufacture', '--count', '1', '--out', join(cwd, 'bundles'), '--model', 'kuka-kr16', '--enrollment', e.body.enrollment.id], { FLEETKEY_TOKEN: admin });
    deviceId = s.devices[0].deviceId;
    bundle = join(cwd, 'bundles', deviceId);
    await fleetkeyJson(cwd, ['agent', 'provision', '--bundle', bundle]);
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  test('installs the assigned release with CMD, reports it, and the registry lists the device by version; a failing CMD is reported failed', async () => {
    // The operator's repository: offline keys, one release for the device's model, assigned to its name.
    const t = {
      url: server.url,
      adminToken: admin,
      call: async (method: string, path: string, o: { body?: unknown } = {}) => api(method, path, o.body),
    } as unknown as TestServer;
    const keys = offlineKeys();
    await initRepo(t, keys);
    const content = randomBytes(64_000);
    const rel = await publishRelease(t, keys, { model: 'kuka-kr16', version: '1.4.0', content });
    expect(rel.status).toBe(201);
    const name = `robot-${deviceId.slice(0, 8)}`;
    expect((await api('POST', '/v1/releases/assign', { name, releaseId: rel.body.id })).status).toBeLessThan(300);

    const dest = join(cwd, 'installed.bin');
    const a = agent(cwd, ['--bundle', bundle, '--json', '--install-command', `install_it() { cp "$1" '${dest}'; }; install_it`]);
    const done = await a.waitFor((l) => l.event === 'update' && l.status !== 'none');
    expect(done).toMatchObject({ status: 'installed', version: '1.4.0', releaseId: rel.body.id });
    expect(readFileSync(dest).equals(content)).toBe(true);
    const listed = async () => (await api('GET', '/v1/devices?installedVersion=1.4.0')).body.devices.map((d: { id: string }) => d.id);
    for (let i = 0; i < 100 && (await listed()).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await listed()).toEqual([deviceId]);
    const cli = await fleetkeyJson(cwd, ['device', 'list', '--version', '1.4.0'], { FLEETKEY_TOKEN: admin, FLEETKEY_URL: server.url });
    expect(cli.devices.map((d: { id: string; installedVersion: string }) => [d.id, d.installedVersion])).toEqual([[deviceId, '1.4.0']]);

    // When told: an update.check command runs a check and answers with its outcome.
    const cmd = await api('POST', '/v1/commands', { name, type: 'update.check', payload: {} });
    expect(cmd.status).toBe(201);
    await a.waitFor((l) => l.event === 'update' && l.status === 'current');
    expect(await a.stop()).toBe(0);

    // A release whose install command fails: nothing recorded as installed, failed reported.
    const rel2 = await publishRelease(t, keys, { model: 'kuka-kr16', version: '1.5.0', content: randomBytes(10_000) });
    await api('POST', '/v1/releases/assign', { name, releaseId: rel2.body.id });
    rmSync(dest);
    const b = agent(cwd, ['--bundle', bundle, '--json', '--install-command', 'false']);
    expect(await b.waitFor((l) => l.event === 'update' && l.status !== 'none')).toMatchObject({ status: 'failed', code: 'UPDATE_INSTALL_FAILED', version: '1.5.0' });
    expect(existsSync(dest)).toBe(false);
    await b.stop();
    const dev = await api('GET', `/v1/devices/${deviceId}`);
    expect(dev.body.installedVersion).toBe('1.4.0');
  });
});
