/**
 * `fleetkey simulate` through the built binary against `fleetkey serve`: devices are manufactured,
 * provisioned over the device plane, connected over MQTT/mTLS and send; what they sent is stored
 * by the server. `--churn` replaces named devices (the old one cut for good, the new one's data
 * under the name) and `--storm` cuts every link at once; both are checked against what the server
 * recorded, not only against the simulator's own counts.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { adminApi, BIN, fleetkey, fleetkeyJson, serve } from './run-cli.js';

describe('fleetkey simulate', () => {
  let cwd: string;
  let server: Awaited<ReturnType<typeof serve>>;
  let admin: Record<string, string>;
  let enrollment: string;
  const api = adminApi(() => server.url, () => cwd);

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'fleetkey-simulate-'));
    server = await serve(cwd);
    admin = { FLEETKEY_TOKEN: readFileSync(join(cwd, 'fleetkey-data', 'admin.token'), 'utf8').trim() };
    const e = await api('POST', '/v1/enrollments', { label: 'sim', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'sim-{id8}' } });
    expect(e.status).toBe(201);
    enrollment = e.body.enrollment.id;
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  test('fail: usage errors are refused before anything is registered', async () => {
    const cases: [string[], string][] = [
      [['simulate', '--devices', '0', '--manufacture', '--enrollment', enrollment], '--devices'],
      [['simulate', '--devices', '2', '--manufacture'], '--enrollment'],
      [['simulate', '--devices', '2'], '--bundles'],
      [['simulate', '--devices', '2', '--bundles', join(cwd, 'nowhere')], 'no such directory'],
      [['simulate', '--devices', '2', '--manufacture', '--enrollment', enrollment, '--duration', 'soon'], '--duration'],
      [['simulate', '--devices', '2', '--manufacture', '--enrollment', enrollment, '--rate', '-1'], '--rate'],
      [['simulate', '--devices', '2', '--manufacture', '--enrollment', enrollment, '--churn', '0'], '--churn'],
      [['simulate', '--devices', '2', '--manufacture', '--enrollment', enrollment, '--storm', '--storm-after', 'later'], '--storm-after'],
      [['simulate', '--devices', '2', '--manufacture', '--enrollment', enrollment, '--mqtt-url', 'mqtt://127.0.0.1:1883'], '--mqtt-url'],
      [['simulate', '--devices', '2', '--manufacture', '--enrollment', enrollment, '--offset', '3'], '--offset'],
    ];
    for (const [args, needle] of cases) {
      const r = await fleetkey(cwd, args, admin);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr).toContain(needle);
    }
    expect((await api('GET', '/v1/devices')).body.devices).toHaveLength(0);
  });

  test('fail: an enrollment that does not exist is refused by the server (exit 1)', async () => {
    const r = await fleetkey(cwd, ['simulate', '--devices', '1', '--manufacture', '--enrollment', '00000000-0000-4000-8000-000000000000', '--duration', '1s'], admin);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('refused');
  });

  test('5 devices manufactured, provisioned and connected send for 3 s with no errors; telemetry is stored', async () => {
    const summary = await fleetkeyJson(cwd, ['simulate', '--devices', '5', '--manufacture', '--enrollment', enrollment, '--rate', '2', '--duration', '3s'], admin);
    expect(summary).toMatchObject({ devices: 5, provisioned: 5, alreadyProvisioned: 0, connected: 5, refusals: 0, errors: 0, interrupted: false, bundles: null });
    expect(summary.problems).toEqual({});
    expect(summary.messagesSent).toBeGreaterThan(0);
    expect(summary.messagesAcknowledged).toBe(summary.messagesSent);
    // 5 devices × 2/s × ~3 s ≈ 30; leave room for a slow shared machine, not for a silent ticker.
    expect(summary.messagesSent).toBeGreaterThanOrEqual(15);
    expect(summary.messagesPerSecond).toBeGreaterThan(0);
    expect(summary.connectMs.p50).toBeGreaterThanOrEqual(0);
    expect(summary.connectMs.p99).toBeGreaterThanOrEqual(summary.connectMs.p50);
    expect(summary.deviceIdsSample).toHaveLength(5);
    const id = summary.deviceIdsSample[0];
    const t = await fleetkeyJson(cwd, ['data', 'telemetry', id], admin);
    const points = t.points as { payload: { seq: number; temperature: number } }[];
    expect(points.length).toBeGreaterThan(0);
    expect(typeof points[0]!.payload.temperature).toBe('number');
    expect((await api('GET', `/v1/data/diagnostics?deviceId=${id}`)).body.points.length).toBeGreaterThan(0);
    // Clean shutdown is implied: a connection left open keeps the process alive past run-cli's timeout.
  }, 30_000);

  test('--bundles: answers a command with {ok:true}, reuses provisioned bundles, and SIGINT ends early with a summary', async () => {
    const dir = join(cwd, 'fleet');
    const first = spawn(process.execPath, [BIN, 'simulate', '--devices', '2', '--manufacture', '--enrollment', enrollment, '--bundles', dir, '--rate', '1', '--duration', '20s', '--json'], {
      cwd,
      env: { PATH: process.env['PATH'] ?? '', ...admin },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    first.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    first.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => first.once('exit', (code) => r(code)));
    // The progress line reports the sending phase once both devices are up.
    const until = async (pred: () => boolean, what: string): Promise<void> => {
      const end = Date.now() + 15_000;
      while (!pred()) {
        if (Date.now() > end || first.exitCode !== null) throw new Error(`${what}: stderr=${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await until(() => /sending: connected 2\/2/.test(err), 'never connected 2/2');
    const id = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).devices[0].deviceId as string;
    const sent = await api('POST', '/v1/commands', { name: `sim-${id.slice(0, 8)}`, type: 'ping', payload: {} });
    expect(sent.status).toBe(201);
    const end = Date.now() + 10_000;
    let cmd: any;
    do {
      await new Promise((r) => setTimeout(r, 100));
      cmd = (await api('GET', `/v1/commands/${sent.body.id}`)).body;
    } while (cmd.status !== 'completed' && Date.now() < end);
    expect(cmd).toMatchObject({ status: 'completed', deliveredTo: id, result: { ok: true } });
    first.kill('SIGINT');
    expect(await exited).toBe(130);
    const summary = JSON.parse(out);
    expect(summary).toMatchObject({ devices: 2, provisioned: 2, connected: 2, connectedAtEnd: 2, interrupted: true, commandsAnswered: 1, errors: 0, bundles: dir });
    expect(summary.sendWindowMs).toBeLessThan(20_000);

    const again = await fleetkeyJson(cwd, ['simulate', '--devices', '2', '--bundles', dir, '--rate', '0', '--duration', '500ms'], admin);
    expect(again).toMatchObject({ devices: 2, provisioned: 0, alreadyProvisioned: 2, connected: 2, messagesSent: 0, errors: 0, refusals: 0 });
  }, 40_000);

  /** Audit entries of `action` for `subject` (the gateway records every connect and disconnect). */
  const audited = async (action: string, subject: string): Promise<number> => (await api('GET', `/v1/audit?action=${action}&subject=${encodeURIComponent(subject)}&limit=1000`)).body.entries.length;

  test('--churn: named devices are replaced with the old one revoked and cut for good; the new one sends under the name', async () => {
    // 22 bundles: 20 run, 2 are spares; further replacements are manufactured on demand.
    const dir = join(cwd, 'churn-fleet');
    await fleetkeyJson(cwd, ['manufacture', '--count', '22', '--out', dir, '--enrollment', enrollment], admin);
    const spares = (JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).devices as { deviceId: string }[]).slice(20).map((d) => d.deviceId);
    const r = await fleetkey(cwd, ['simulate', '--devices', '20', '--bundles', dir, '--enrollment', enrollment, '--rate', '1', '--churn', '60', '--duration', '4s', '--json'], admin);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    const churn = summary.churn;
    expect(churn.done).toBeGreaterThanOrEqual(2);
    expect(churn).toMatchObject({ perMinute: 60, failed: 0, oldReconnected: 0, failures: {} });
    expect(churn.oldStops).toEqual({ revoked: churn.done });
    expect(summary).toMatchObject({ refusals: 0, errors: 0 });
    expect(r.stderr).toMatch(/churn [1-9]\d*\/\d+ replaced/);
    for (const k of ['replaceMs', 'cutMs', 'firstMessageMs']) expect(churn[k].p50).toBeGreaterThan(0);
    expect(churn.firstMessageMs.p99).toBeLessThan(10_000);
    // The first replacements took the spare bundles in manifest order.
    expect(churn.replacements.slice(0, 2).map((x: { newDeviceId: string }) => x.newDeviceId)).toEqual(spares);

    const reps = churn.replacements as { name: string; oldDeviceId: string; newDeviceId: string; cutMs: number; oldStop: string }[];
    // A replacement device may itself be replaced later: the name ends on the last one.
    const holder = new Map(reps.map((x) => [x.name, x.newDeviceId]));
    for (const rep of reps) {
      expect(rep.oldStop).toBe('revoked');
      expect((await api('GET', `/v1/devices/${rep.oldDeviceId}`)).body.status).toBe('revoked');
      expect((await api('GET', `/v1/names/${rep.name}`)).body.deviceId).toBe(holder.get(rep.name));
      // Stayed off: its one connection is the one before the replacement.
      expect(await audited('device.connect', `device:${rep.oldDeviceId}`)).toBe(1);
      expect(await audited('device.connect', `device:${rep.newDeviceId}`)).toBe(1);
      const diag = await fleetkeyJson(cwd, ['data', 'diagnostics', rep.name], admin);
      const fromNew = (diag.points as { deviceId: string; name: string; payload: { replacementOf?: string } }[]).filter((p) => p.deviceId === rep.newDeviceId);
      expect(fromNew.some((p) => p.payload.replacementOf === rep.oldDeviceId && p.name === rep.name)).toBe(true);
    }
    // A later run over the directory skips the replaced (revoked) devices instead of counting refusals.
    const again = await fleetkeyJson(cwd, ['simulate', '--devices', String(22 - churn.done), '--bundles', dir, '--rate', '0', '--duration', '300ms'], admin);
    expect(again).toMatchObject({ connected: 22 - churn.done, refusals: 0, errors: 0 });
  }, 50_000);

  test('--storm: every link is cut at once and every device comes back through its backoff', async () => {
    const r = await fleetkey(cwd, ['simulate', '--devices', '30', '--manufacture', '--enrollment', enrollment, '--keep', '--rate', '2', '--duration', '2s', '--storm', '--storm-after', '1s', '--json'], admin);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    const storm = summary.storm;
    expect(storm).toMatchObject({ devices: 30, linksCut: 30, back: 30, successRate: 1, timedOut: false, refusals: {} });
    expect(storm.attempts).toBeGreaterThanOrEqual(30);
    expect(storm.attempts - storm.failedAttempts).toBe(30);
    // Full jitter with a 1 s base: the first retry comes within a second, so most are back by then.
    expect(storm.timeTo99Ms).toBeGreaterThan(0);
    expect(storm.timeTo99Ms).toBeLessThanOrEqual(storm.timeTo100Ms);
    expect(storm.timeTo100Ms).toBeLessThan(storm.durationMs + 1);
    expect(storm.connackMs.p50).toBeGreaterThan(0);
    expect(storm.connackMs.p99).toBeGreaterThanOrEqual(storm.connackMs.p50);
    expect(summary).toMatchObject({ connectedAtEnd: 30, refusals: 0, errors: 0 });
    expect(r.stderr).toMatch(/fleetkey: storm: .*storm \d+\.\d s: back \d+\/30/);
    // The gateway saw each device connect twice: before the storm and after it.
    for (const id of summary.deviceIdsSample.slice(0, 3)) expect(await audited('device.connect', `device:${id}`)).toBe(2);
  }, 40_000);
});
