/**
 * Interop with Debian's mosquitto-clients (an independent MQTT implementation, libmosquitto)
 * over mTLS, in both protocol versions.
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, until, type Harness } from './support/harness.js';
import { makePki, type Pki } from './support/pki.js';

const run = promisify(execFile);
const A = randomUUID();
const B = randomUUID();
const haveClients = existsSync('/usr/bin/mosquitto_pub') && existsSync('/usr/bin/mosquitto_sub');
let pki: Pki;
let h: Harness;

function tlsArgs(id: string, version: 'mqttv5' | 'mqttv311'): string[] {
  const ident = pki.devices.get(id)!;
  return ['-h', '127.0.0.1', '-p', String(h.port), '--cafile', pki.caFile, '--cert', ident.certFile, '--key', ident.keyFile, '-i', id, '-V', version];
}

async function mosquittoPub(id: string, version: 'mqttv5' | 'mqttv311', topic: string, message: string): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await run('mosquitto_pub', [...tlsArgs(id, version), '-t', topic, '-m', message, '-q', '1'], { timeout: 5000 });
    return { code: 0, stderr };
  } catch (e) {
    const err = e as { code?: number; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stderr: err.stderr ?? '' };
  }
}

beforeAll(async () => {
  if (!haveClients) return;
  pki = await makePki([A, B]);
  h = await startHarness(pki, { sweepIntervalMs: 50 });
});
afterAll(async () => {
  await h?.close();
  await pki?.dispose();
});

describe.skipIf(!haveClients)('mosquitto-clients interop (mTLS)', () => {
  it.each(['mqttv5', 'mqttv311'] as const)('fail-%s: mosquitto_pub to another device topic is refused and not stored', async (version) => {
    const before = h.accepted.length;
    const res = await mosquittoPub(A, version, `devices/${B}/telemetry`, 'nope');
    expect(h.accepted.length).toBe(before);
    expect(h.refusals.at(-1)).toMatchObject({ deviceId: A, reason: 'topic_not_allowed' });
    if (version === 'mqttv5') expect(res.stderr).toMatch(/not authori[sz]ed/i);
    else expect(res.code).not.toBe(0);
  });

  it('fail: mosquitto_pub with a client id that is not its certificate identity is rejected', async () => {
    const ident = pki.devices.get(A)!;
    const args = ['-h', '127.0.0.1', '-p', String(h.port), '--cafile', pki.caFile, '--cert', ident.certFile, '--key', ident.keyFile, '-i', B, '-V', 'mqttv5', '-t', `devices/${B}/state`, '-m', 'x', '-q', '1'];
    await expect(run('mosquitto_pub', args, { timeout: 5000 })).rejects.toMatchObject({ stderr: expect.stringMatching(/identifier/i) });
  });

  it.each(['mqttv5', 'mqttv311'] as const)('%s: mosquitto_pub QoS 1 to its own telemetry topic is stored', async (version) => {
    const before = h.accepted.length;
    const res = await mosquittoPub(A, version, `devices/${A}/telemetry`, `hello-${version}`);
    expect(res.code).toBe(0);
    expect(h.accepted.length).toBe(before + 1);
    expect(h.accepted.at(-1)).toMatchObject({ deviceId: A, kind: 'telemetry', qos: 1 });
    expect(h.accepted.at(-1)?.payload.toString()).toBe(`hello-${version}`);
  });

  it.each(['mqttv5', 'mqttv311'] as const)('%s: mosquitto_sub receives a command and acknowledges it', async (version) => {
    const cid = `mosq-${version}`;
    const sub = spawn('mosquitto_sub', [...tlsArgs(B, version), '-t', `devices/${B}/commands/+`, '-q', '1', '-C', '1', '-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    sub.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => sub.on('exit', (code) => r(code)));
    try {
      // Subscribed once sendCommand is accepted.
      await until(() => h.gw.isConnected(B) && h.gw.sendCommand(B, cid, Buffer.from('{"op":"blink"}')), 5000, 'subscription');
      expect(await exited).toBe(0);
      expect(out.trim()).toBe(`devices/${B}/commands/${cid} {"op":"blink"}`);
      await until(() => h.acked.some((a) => a.commandId === cid), 3000, 'ack');
    } finally {
      sub.kill();
    }
  });

  it('fail: mosquitto_sub to another device command topic is denied', async () => {
    const res = await run('mosquitto_sub', [...tlsArgs(A, 'mqttv5'), '-t', `devices/${B}/commands/+`, '-q', '1', '-W', '3'], { timeout: 5000 }).catch(
      (e: { stderr?: string; code?: number }) => e,
    );
    expect(String((res as { stderr?: string }).stderr)).toMatch(/denied/i);
    expect(h.refusals.at(-1)).toMatchObject({ deviceId: A, reason: 'subscribe_not_allowed' });
  });
});
