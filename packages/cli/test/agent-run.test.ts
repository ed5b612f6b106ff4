/**
 * `fleetkey agent run` through the built binary against `fleetkey serve`: a robot manufactured
 * and provisioned with the CLI connects over mTLS, sends what it reads on stdin, prints and
 * answers commands, and exits 1 when the gateway revokes it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { adminApi, BIN, fleetkey, fleetkeyJson, serve } from './run-cli.js';

interface Agent {
  proc: ChildProcess;
  lines: () => any[];
  stderr: () => string;
  exited: Promise<number>;
  waitFor: (pred: (l: any) => boolean, ms?: number) => Promise<any>;
}

function agentRun(cwd: string, args: string[]): Agent {
  const proc = spawn(process.execPath, [BIN, 'agent', 'run', ...args], { cwd, env: { PATH: process.env['PATH'] ?? '' }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const lines = () => out.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
  const exited = new Promise<number>((r) => proc.once('exit', (code) => r(code ?? -1)));
  const waitFor = async (pred: (l: any) => boolean, ms = 10_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const hit = lines().find(pred);
      if (hit !== undefined) return hit;
      if (Date.now() > end || proc.exitCode !== null) throw new Error(`no matching line; stdout=${out} stderr=${err}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  return { proc, lines, stderr: () => err, exited, waitFor };
}

describe('fleetkey agent run', () => {
  let cwd: string;
  let server: Awaited<ReturnType<typeof serve>>;
  let admin: string;
  let out: string;
  let devices: { deviceId: string }[];
  const api = adminApi(() => server.url, () => cwd);

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'fleetkey-agent-run-'));
    server = await serve(cwd);
    admin = readFileSync(join(cwd, 'fleetkey-data', 'admin.token'), 'utf8').trim();
    const e = await api('POST', '/v1/enrollments', { label: 'robots', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'robot-{id8}' } });
    out = join(cwd, 'bundles');
    const s = await fleetkeyJson(cwd, ['manufacture', '--count', '3', '--out', out, '--model', 'kuka-kr16', '--enrollment', e.body.enrollment.id], { FLEETKEY_TOKEN: admin });
    devices = s.devices;
    for (const d of devices.slice(0, 2)) await fleetkeyJson(cwd, ['agent', 'provision', '--bundle', join(out, d.deviceId)]);
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  test('fail: a bundle that was never provisioned exits 3 with CONFIG_INVALID', async () => {
    const r = await fleetkey(cwd, ['agent', 'run', '--bundle', join(out, devices[2]!.deviceId)]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('CONFIG_INVALID');
  });

  test('sends stdin lines, prints and answers a command, exits 0 on EOF after flushing', async () => {
    const id = devices[0]!.deviceId;
    const a = agentRun(cwd, ['--bundle', join(out, id), '--json']);
    a.proc.stdin!.write('diagnostics {"partsPerHour": 17}\ntelemetry {"jointTorque": 2.5}\nnonsense {}\n');
    await a.waitFor((l) => l.event === 'connected' && l.auth === 'mtls');
    await a.waitFor((l) => l.event === 'sent' && l.kind === 'telemetry');
    const sent = await api('POST', '/v1/commands', { name: `robot-${id.slice(0, 8)}`, type: 'reboot', payload: { delay: 5 } });
    expect(sent.status).toBe(201);
    const cmd = await a.waitFor((l) => l.id === sent.body.id);
    expect(cmd).toMatchObject({ type: 'reboot', payload: { delay: 5 } });
    a.proc.stdin!.end('state {"mode": "auto"}\n');
    expect(await a.exited).toBe(0);
    expect(a.lines().at(-1)).toMatchObject({ event: 'exit', sent: 3, buffered: 0 });
    expect(a.stderr()).toContain('line 3: unknown kind "nonsense"');
    const done = (await api('GET', `/v1/commands/${sent.body.id}`)).body;
    expect(done).toMatchObject({ status: 'completed', deliveredTo: id, result: { ok: true } });
    expect((await api('GET', `/v1/data/diagnostics?deviceId=${id}`)).body.points[0].payload).toEqual({ partsPerHour: 17 });
    expect((await api('GET', `/v1/data/telemetry?deviceId=${id}`)).body.points[0].payload).toEqual({ jointTorque: 2.5 });
  });

  test('without --json it says what it does on stderr: where it connects, each line sent, the end (issue 14)', async () => {
    const id = devices[0]!.deviceId;
    const a = agentRun(cwd, ['--bundle', join(out, id)]);
    a.proc.stdin!.end('telemetry {"jointTorque": 3}\n');
    expect(await a.exited).toBe(0);
    const err = a.stderr();
    expect(err).toMatch(new RegExp(`fleetkey: device ${id}: connecting to mqtts://`));
    expect(err).toMatch(/fleetkey: connected \(mtls, certificate [0-9a-f]+\)/);
    // Sent before the connection is up it is buffered, then flushed at EOF: both are said.
    expect(err).toMatch(/fleetkey: line 1: telemetry (delivered \(stored by the server\)|buffered offline \(sent when back online\))/);
    expect(err).toContain('fleetkey: end of input: 1 message(s) sent, 0 buffered');
  });

  test('revocation while running: stopped with the reason, exit 1 without waiting for EOF', async () => {
    const id = devices[1]!.deviceId;
    const a = agentRun(cwd, ['--bundle', join(out, id), '--json', '--no-ack-commands']);
    await a.waitFor((l) => l.event === 'connected');
    expect((await api('POST', `/v1/devices/${id}/revoke`, { reason: 'stolen' })).status).toBe(200);
    expect(await a.exited).toBe(1);
    expect(a.stderr()).toContain('stopped by the gateway: revoked (0x98)');
    expect(a.lines().at(-1)).toMatchObject({ event: 'stopped', reason: 'revoked', code: 0x98 });
  });
});
