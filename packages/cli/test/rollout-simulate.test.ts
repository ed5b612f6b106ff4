/**
 * Staged rollouts end to end through the fleetkey binary (issue 12 part C): `fleetkey serve`,
 * TUF roots and a release made with `fleetkey updates|release`, 200 devices manufactured,
 * provisioned and connected by `fleetkey simulate`, each running the SDK's DeviceUpdater (tuf-js
 * on the image repository and the per-device director over mTLS) and reporting over MQTT through
 * the real gateway. A rollout whose first wave fails at 50 % stops itself; the same 200 names
 * then complete another one; a device that replaces one under its name installs the name's release.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { adminApi, BIN, fleetkey, fleetkeyJson, serve } from './run-cli.js';

const DEVICES = 200;

describe('fleetkey rollout over fleetkey simulate (200 devices, real gateway and device plane)', () => {
  let cwd: string;
  let keys: string;
  let bundles: string;
  let server: Awaited<ReturnType<typeof serve>>;
  let env: Record<string, string>;
  let release: { id: string; version: string };
  const api = adminApi(() => server.url, () => cwd);
  const offline = { FLEETKEY_URL: 'http://127.0.0.1:1' };

  /** `fleetkey simulate` over the kept bundles, running the update flow, until stop() (SIGINT: it closes and prints its summary). */
  const simulate = (args: string[]) => {
    const proc: ChildProcess = spawn(process.execPath, [BIN, 'simulate', '--bundles', bundles, '--rate', '0', '--duration', '10m', '--update-check', '2s', '--json', ...args], {
      cwd,
      env: { PATH: process.env['PATH'] ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    return {
      stop: () =>
        new Promise<any>((resolve, reject) => {
          proc.once('exit', (code) => {
            try {
              resolve(JSON.parse(out));
            } catch {
              reject(new Error(`simulate exited ${code}: ${err.slice(-2000)}`));
            }
          });
          proc.kill('SIGINT');
        }),
    };
  };
  /** The binary without run-cli's 60 s cap: manufacturing and provisioning 200 devices takes longer on a shared machine. */
  const runLong = (args: string[]) =>
    new Promise<any>((resolve, reject) => {
      const proc = spawn(process.execPath, [BIN, ...args, '--json'], { cwd, env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      proc.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`fleetkey ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`))));
    });
  const show = async (id: string) => (await api('GET', `/v1/rollouts/${id}`)).body;
  // Generous: 201 devices checking over mTLS on a 2-core machine shared with other suites.
  const until = async <T>(what: string, probe: () => Promise<T | undefined>, ms = 300_000): Promise<T> => {
    const end = Date.now() + ms;
    for (;;) {
      const v = await probe();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out: ${what}; rollouts: ${JSON.stringify((await api('GET', '/v1/rollouts')).body.rollouts.map((r: any) => [r.status, r.currentWave, r.counts]))}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'fleetkey-rollout-'));
    keys = mkdtempSync(join(tmpdir(), 'fleetkey-rollout-keys-'));
    bundles = join(cwd, 'bundles');
    server = await serve(cwd);
    env = { FLEETKEY_DATA_DIR: join(cwd, 'fleetkey-data'), FLEETKEY_URL: server.url };
    // Offline keys: three root keys (threshold 2) and the customer's targets key.
    for (const k of ['root1', 'root2', 'root3']) {
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      writeFileSync(join(keys, k), privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
      writeFileSync(join(keys, `${k}.pub`), publicKey.export({ format: 'pem', type: 'spki' }));
    }
    await fleetkeyJson(keys, ['release', 'keygen', '--out', 'targets', '--type', 'ed25519'], offline);
    const rootKeys = ['root1', 'root2', 'root3'].flatMap((k) => ['--root-key', join(keys, `${k}.pub`)]);
    for (const repo of ['image', 'director']) {
      const draft = join(keys, `${repo}-root.json`);
      const r = await fleetkey(cwd, ['updates', 'root-draft', '--repo', repo, '--version', '1', ...rootKeys, ...(repo === 'image' ? ['--targets-key', join(keys, 'targets.pub')] : []), '--out', draft], env);
      expect(r.code, r.stderr).toBe(0);
      await fleetkeyJson(keys, ['release', 'sign', '--in', draft, '--out', `${draft}.signed`, '--key', 'root1', '--key', 'root2'], offline);
      await fleetkeyJson(cwd, ['updates', 'submit-root', '--repo', repo, '--file', `${draft}.signed`], env);
    }
    await fleetkeyJson(cwd, ['updates', 'init-targets', '--key', join(keys, 'targets')], env);
    const file = join(keys, 'firmware.img');
    writeFileSync(file, randomBytes(20_000));
    release = await fleetkeyJson(cwd, ['release', 'create', '--file', file, '--version', '2.0.0', '--model', 'sim', '--key', join(keys, 'targets')], env);

    const e = await api('POST', '/v1/enrollments', { label: 'line', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'line-03-{id8}' } });
    expect(e.status).toBe(201);
    // 200 devices manufactured, provisioned (each bound to its line-03-… name) and connected once.
    const made = await runLong(['simulate', '--devices', String(DEVICES + 1), '--manufacture', '--enrollment', e.body.enrollment.id, '--bundles', bundles, '--rate', '0', '--duration', '1s', '--concurrency', '32']);
    expect(made).toMatchObject({ devices: DEVICES + 1, provisioned: DEVICES + 1, refusals: 0 });
  }, 600_000);

  afterAll(async () => {
    await server?.stop();
    rmSync(cwd, { recursive: true, force: true });
    rmSync(keys, { recursive: true, force: true });
  });

  test('fail: usage errors of --install-fail-ratio and of rollout create are refused before anything runs', async () => {
    for (const x of ['-0.1', '1.5', 'half', '']) {
      const r = await fleetkey(cwd, ['simulate', '--devices', '1', '--bundles', bundles, `--install-fail-ratio=${x}`, '--duration', '1s'], env);
      expect(r.code, x).not.toBe(0);
      expect(r.stderr).toContain('--install-fail-ratio');
    }
    const r = await fleetkey(cwd, ['rollout', 'create', '--release', release.id, '--select', 'line-03-*'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ROLLOUT_SELECTOR_INVALID');
    expect((await api('GET', '/v1/rollouts')).body.rollouts).toHaveLength(0);
  });

  test('fail: with installs failing on half the devices, the rollout aborts by itself in its first wave; the second wave is never assigned', async () => {
    // The spare (the 201st device) keeps its own name out of the selection.
    const names = (await api('GET', '/v1/names?limit=1000')).body.names as { name: string; deviceId: string | null }[];
    const spare = names.find((n) => n.name.startsWith('line-03-'))!;
    await api('POST', `/v1/names/${spare.name}/rename`, { newName: 'spare-cell' });
    const r = await fleetkeyJson(cwd, ['rollout', 'create', '--release', release.id, '--select', 'name:line-03-*', '--waves', '20%,100%', '--max-per-minute', '10000', '--abort-failure-ratio', '0.1', '--min-executed', '20', '--timeout', '5m'], env);
    expect(r).toMatchObject({ status: 'running', waveSizes: [40, 160] });
    const sim = simulate(['--devices', String(DEVICES + 1), '--install-fail-ratio', '0.5']);
    const done = await until('aborted', async () => {
      const s = await show(r.id);
      return s.status === 'aborted' ? s : undefined;
    });
    const summary = await sim.stop();
    expect(done.abortReason).toMatch(/failure ratio/);
    expect(done.currentWave).toBe(0);
    expect(done.counts.cancelled).toBe(160);
    expect(done.counts.failed).toBeGreaterThan(2);
    // The failures are the devices' own reports (install hook failed), carried by MQTT.
    const failed = (await api('GET', `/v1/rollouts/${r.id}/targets?status=failed`)).body.targets as { code: string; deviceId: string }[];
    expect(new Set(failed.map((t) => t.code))).toEqual(new Set(['UPDATE_INSTALL_FAILED']));
    const targets = (await api('GET', `/v1/rollouts/${r.id}/targets?limit=1000`)).body.targets as { wave: number; assignedAt: string | null }[];
    expect(targets.filter((t) => t.wave === 1).every((t) => t.assignedAt === null)).toBe(true);
    expect(summary.updates.installed).toBeGreaterThan(0);
    expect(summary.updates.failed).toBeGreaterThan(0);
    // Only the 40 names of wave 1 were ever told to install anything.
    expect(summary.updates.installed + summary.updates.failed).toBeLessThanOrEqual(40);
    const shown = await fleetkey(cwd, ['rollout', 'show', r.id], env);
    expect(shown.stdout).toContain('aborted');
    const rb = await fleetkeyJson(cwd, ['rollout', 'rollback', r.id, '--reason', 'bad build'], env);
    expect(rb.status).toBe('rolled_back');
  }, 600_000);

  test('the same 200 names complete a rollout when installs succeed; a device replacing one under its name installs the name\'s release', async () => {
    const r = await fleetkeyJson(cwd, ['rollout', 'create', '--release', release.id, '--select', 'name:line-03-*', '--waves', '1%,10%,50%,100%', '--max-per-minute', '10000', '--abort-failure-ratio', '0.1', '--min-executed', '20', '--timeout', '5m'], env);
    expect(r.waveSizes).toEqual([2, 18, 80, 100]);
    const sim = simulate(['--devices', String(DEVICES + 1), '--install-fail-ratio', '0']);
    // Robot replacement during the rollout: once wave 2 runs, a name of wave 3 gets the spare device.
    await until('wave 2', async () => ((await show(r.id)).currentWave >= 1 ? true : undefined));
    const t3 = ((await api('GET', `/v1/rollouts/${r.id}/targets?limit=1000`)).body.targets as { name: string; wave: number }[]).find((t) => t.wave === 3)!;
    const spare = (await api('GET', '/v1/names/spare-cell')).body;
    const old = (await api('GET', `/v1/names/${t3.name}`)).body;
    expect((await api('POST', '/v1/names/spare-cell/unbind', { reason: 'spare' })).status).toBe(200);
    const rep = await fleetkey(cwd, ['name', 'replace', t3.name, '--with', spare.deviceId, '--revoke-old', '--reason', 'servo failure'], env);
    expect(rep.code, rep.stderr).toBe(0);
    const done = await until('completed', async () => {
      const s = await show(r.id);
      if (s.status === 'aborted') throw new Error(`aborted: ${s.abortReason}`);
      return s.status === 'completed' ? s : undefined;
    }, 400_000);
    const summary = await sim.stop();
    expect(done.counts).toMatchObject({ total: DEVICES, installed: DEVICES, failed: 0, timedOut: 0 });
    // The name's outcome came from the NEW device; the old one is revoked and never reported it.
    const t = ((await api('GET', `/v1/rollouts/${r.id}/targets?limit=1000`)).body.targets as { name: string; deviceId: string; status: string }[]).find((x) => x.name === t3.name)!;
    expect(t).toMatchObject({ status: 'installed', deviceId: spare.deviceId });
    expect(old.deviceId).not.toBe(spare.deviceId);
    const dev = (await api('GET', `/v1/devices/${spare.deviceId}`)).body;
    expect(dev.installedVersion ?? dev.installed_version).toBe('2.0.0');
    expect(summary.updates.failed, JSON.stringify(summary.updates.refused)).toBe(0);
  }, 900_000);
});
