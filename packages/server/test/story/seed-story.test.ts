import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { deviceKey } from '../support/pki.js';
import { manufactured, provisionX509 } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

interface Robot {
  id: string;
  keyPem: string;
  chainPem: string;
  ca: string;
}

const NAME = 'line-03-left-welding-12';

async function connect(t: TestServer, r: Robot, version: 4 | 5 = 5): Promise<MqttClient> {
  return mqtt.connectAsync(t.server.mqttUrl!.replace('mqtts:', 'mqtts:'), {
    clientId: r.id,
    protocolVersion: version,
    key: r.keyPem,
    cert: r.chainPem,
    ca: r.ca,
    rejectUnauthorized: true,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
}

async function until<T>(f: () => T | undefined | Promise<T | undefined>, ms = 3000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.each(DIALECTS)('the seed story on the real gateway (%s)', (dialect) => {
  let t: TestServer;
  let a: Robot;
  let b: Robot;
  let clientA: MqttClient;
  let clientB: MqttClient;
  beforeAll(async () => {
    t = await startTestServer(dialect);
    const ma = await manufactured(t, 'kuka-kr16', 'a');
    const mb = await manufactured(t, 'kuka-kr16', 'b');
    await t.call('POST', '/v1/enrollments', { body: { label: 'line 3', kind: 'group', attestation: 'x509', allocation: { type: 'table', entries: { [ma.id]: NAME } } } });
    const robots: Robot[] = [];
    for (const m of [ma, mb]) {
      const op = deviceKey();
      const r = await provisionX509(t, m, op.csrPem);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.gateway.mqttUrl).toBe(t.server.mqttUrl);
      robots.push({ id: m.id, keyPem: op.keyPem, chainPem: r.body.chainPem, ca: r.body.caBundlePem });
    }
    [a, b] = robots as [Robot, Robot];
  });
  afterAll(async () => {
    clientA?.end(true);
    clientB?.end(true);
    await t?.stop();
  });

  test('both robots connect over mTLS and send diagnostics and telemetry, stamped server-side', async () => {
    clientA = await connect(t, a);
    clientB = await connect(t, b, 4);
    await clientA.publishAsync(`devices/${a.id}/diagnostics`, JSON.stringify({ partsPerHour: 10, deviceId: 'forged' }), { qos: 1 });
    await clientA.publishAsync(`devices/${a.id}/telemetry`, JSON.stringify({ jointTorque: 1.5 }), { qos: 1 });
    await clientB.publishAsync(`devices/${b.id}/telemetry`, JSON.stringify({ jointTorque: 2.5 }), { qos: 1 });
    await clientB.publishAsync(`devices/${b.id}/diagnostics`, JSON.stringify({ warmup: true }), { qos: 1 });
    const diag = await t.call('GET', `/v1/data/diagnostics?name=${NAME}`);
    expect(diag.body.points).toHaveLength(1);
    expect(diag.body.points[0]).toMatchObject({ deviceId: a.id, name: NAME, payload: { partsPerHour: 10 } });
    // B had no name yet: its diagnostics are kept under the device, not lost.
    expect((await t.call('GET', `/v1/data/diagnostics?deviceId=${b.id}`)).body.points[0]).toMatchObject({ name: null, payload: { warmup: true } });
    expect((await t.call('GET', `/v1/devices/${a.id}`)).body.status).toBe('active');
  });

  test('fail: a device may not publish as another device, nor with a client id not its own', async () => {
    const refused = await clientA.publishAsync(`devices/${b.id}/telemetry`, JSON.stringify({ x: 1 }), { qos: 1 }).then((p) => p, (e: Error) => e);
    expect(JSON.stringify(refused)).toMatch(/135|Not authorized|not authorized/i);
    await expect(mqtt.connectAsync(t.server.mqttUrl!, { clientId: b.id, protocolVersion: 5, key: a.keyPem, cert: a.chainPem, ca: a.ca, reconnectPeriod: 0 })).rejects.toThrow(/[Cc]lient [Ii]dentifier|133/);
    const bad = await clientA.publishAsync(`devices/${a.id}/telemetry`, 'not json', { qos: 1 }).then((p) => p, (e: Error) => e);
    expect(JSON.stringify(bad)).toMatch(/153|[Pp]ayload format/);
  });

  test('replace with --revoke-old: the old robot is cut within 1 s (DISCONNECT 0x98) and cannot come back', async () => {
    const cut = new Promise<{ reason: number | undefined; at: number }>((resolve) =>
      clientA.on('disconnect', (p) => resolve({ reason: p.reasonCode, at: Date.now() })),
    );
    const started = Date.now();
    const r = await t.call('POST', `/v1/names/${NAME}/replace`, { body: { deviceId: b.id, expectedDeviceId: a.id, revokeOld: true, reason: 'servo failure' } });
    expect(r.status).toBe(200);
    const { reason, at } = await cut;
    expect(reason).toBe(0x98);
    expect(at - started).toBeLessThan(1000);
    await expect(connect(t, a)).rejects.toThrow(/[Nn]ot authorized|135|Bad User Name|134/);
    // Refused before the gateway knows who it is: audited under the source, with the reason.
    const refusal = await until(async () => {
      const last = (await t.call('GET', `/v1/audit?action=gateway.refused&limit=1000`)).body.entries.at(-1);
      return last?.code === 'not_authorized' ? last : undefined;
    });
    expect(refusal).toMatchObject({ outcome: 'refused', code: 'not_authorized' });
    expect(refusal.detail.reason).toContain('revoked');
  });

  test('diagnostics by name span both robots; the old robot\'s telemetry stays under its device', async () => {
    await clientB.publishAsync(`devices/${b.id}/diagnostics`, JSON.stringify({ partsPerHour: 12 }), { qos: 1 });
    const diag = (await t.call('GET', `/v1/data/diagnostics?name=${NAME}`)).body.points;
    expect(diag.map((p: { deviceId: string }) => p.deviceId)).toEqual([a.id, b.id]);
    expect(diag.map((p: { payload: { partsPerHour: number } }) => p.payload.partsPerHour)).toEqual([10, 12]);
    const telA = (await t.call('GET', `/v1/data/telemetry?deviceId=${a.id}`)).body.points;
    expect(telA).toHaveLength(1);
    expect(telA[0].payload).toEqual({ jointTorque: 1.5 });
    expect((await t.call('GET', `/v1/data/telemetry?deviceId=${b.id}`)).body.points).toHaveLength(1);
  });

  test('a command sent to the name reaches the new robot, which answers on the result topic', async () => {
    const got = new Promise<{ topic: string; payload: { id: string; type: string; payload: unknown } }>((resolve) =>
      clientB.on('message', (topic, payload) => resolve({ topic, payload: JSON.parse(payload.toString()) })),
    );
    await clientB.subscribeAsync(`devices/${b.id}/commands/+`, { qos: 1 });
    const sent = await t.call('POST', '/v1/commands', { body: { name: NAME, type: 'set-speed', payload: { rpm: 900 }, ttl: '10m' } });
    expect(sent.status).toBe(201);
    const msg = await got;
    expect(msg.topic).toBe(`devices/${b.id}/commands/${sent.body.id}`);
    expect(msg.payload).toMatchObject({ id: sent.body.id, type: 'set-speed', payload: { rpm: 900 } });
    await clientB.publishAsync(`devices/${b.id}/commands/${sent.body.id}/result`, JSON.stringify({ ok: true }), { qos: 1 });
    const done = await until(async () => {
      const c = (await t.call('GET', `/v1/commands/${sent.body.id}`)).body;
      return c.status === 'completed' ? c : undefined;
    });
    expect(done).toMatchObject({ deliveredTo: b.id, result: { ok: true } });
  });

  test('revoking the live certificate cuts the session within 1 s; connects and disconnects are events', async () => {
    const cert = (await t.call('GET', `/v1/certificates?deviceId=${b.id}`)).body.certificates.find((c: { kind: string; status: string }) => c.kind === 'operational' && c.status === 'valid');
    const closed = new Promise<number>((resolve) => clientB.on('close', () => resolve(Date.now())));
    const started = Date.now();
    await t.call('POST', `/v1/certificates/${cert.serial}/revoke`, { body: { reason: 'keyCompromise' } });
    expect((await closed) - started).toBeLessThan(1000);
    // Presence is written by group commit, a few milliseconds after the socket event.
    await vi.waitFor(async () => {
      const events = await t.server.store.db.selectFrom('events').select(['type', 'subject']).where('type', 'in', ['device.connected', 'device.disconnected']).execute();
      expect(events.filter((e) => e.subject === `device:${b.id}`).map((e) => e.type)).toEqual(expect.arrayContaining(['device.connected', 'device.disconnected']));
    });
  });
});
