import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDevice, endClient, sleep, startHarness, until, type Harness } from './support/harness.js';
import { makePki, type Pki } from './support/pki.js';
import { connectPacket, RawClient } from './support/raw-client.js';

const A = randomUUID();
const B = randomUUID();
let pki: Pki;
let h: Harness;

beforeAll(async () => {
  pki = await makePki([A, B]);
  h = await startHarness(pki, { sweepIntervalMs: 50 });
});
afterAll(async () => {
  await h?.close();
  await pki?.dispose();
});

describe('PUBLISH refusals', () => {
  it('fail-v5: QoS 1 to another device topic → PUBACK 0x87, connection kept, nothing stored', async () => {
    const c = await connectDevice(h, pki, A, 5);
    try {
      const before = h.accepted.length;
      const err = await c.publishAsync(`devices/${B}/telemetry`, 'x', { qos: 1 }).catch((e: { code?: number }) => e);
      expect((err as { code?: number }).code).toBe(0x87);
      expect(h.refusals.at(-1)).toMatchObject({ deviceId: A, reason: 'topic_not_allowed' });
      // Still usable afterwards.
      await c.publishAsync(`devices/${A}/telemetry`, 'ok', { qos: 1 });
      expect(h.accepted.length).toBe(before + 1);
      expect(h.accepted.at(-1)?.deviceId).toBe(A);
    } finally {
      await endClient(c);
    }
  });

  it.each([
    ['another device', () => `devices/${B}/state`],
    ['the command topic', () => `devices/${A}/commands/c1`],
    ['an unknown kind', () => `devices/${A}/secrets`],
    ['uppercase id', () => `devices/${A.toUpperCase()}/state`],
  ])('fail-v4: publish to %s → connection closed [MQTT-3.3.5-2]', async (_what, topic) => {
    const c = await connectDevice(h, pki, A, 4);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.publish(topic(), 'x', { qos: 0 });
    await closed;
    expect(h.refusals.at(-1)).toMatchObject({ deviceId: A, reason: 'topic_not_allowed' });
    await endClient(c);
  });

  it('fail-v4: publish to a topic with a wildcard → connection closed, Topic Name invalid [MQTT-3.3.2-2]', async () => {
    const c = await connectDevice(h, pki, A, 4);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.publish(`devices/${A}/+`, 'x', { qos: 0 });
    await closed;
    expect(h.refusals.at(-1)).toMatchObject({ deviceId: A, reason: 'topic_name_invalid' });
    await endClient(c);
  });

  it('fail-v5: QoS 2 → DISCONNECT 0x9B (CONNACK said Maximum QoS 1)', async () => {
    const raw = await RawClient.open(h.port, pki, pki.devices.get(A)!);
    raw.send(connectPacket(A, 5));
    await raw.next('connack');
    raw.send({ cmd: 'publish', topic: `devices/${A}/state`, payload: Buffer.from('x'), qos: 2, messageId: 7, dup: false, retain: false });
    expect(await raw.next('disconnect')).toMatchObject({ reasonCode: 0x9b });
    expect(await raw.waitClosed()).toBe(true);
  });

  it('fail-v4: QoS 2 → closed', async () => {
    const raw = await RawClient.open(h.port, pki, pki.devices.get(A)!, 4);
    raw.send(connectPacket(A, 4), 4);
    await raw.next('connack');
    raw.send({ cmd: 'publish', topic: `devices/${A}/state`, payload: Buffer.from('x'), qos: 2, messageId: 7, dup: false, retain: false }, 4);
    expect(await raw.waitClosed()).toBe(true);
    expect(raw.packets.filter((p) => p.cmd === 'pubrec')).toHaveLength(0);
  });

  it('fail-v5: retained PUBLISH → DISCONNECT 0x9A; topic alias → 0x94', async () => {
    for (const [extra, code] of [
      [{ retain: true }, 0x9a],
      [{ retain: false, properties: { topicAlias: 1 } }, 0x94],
    ] as const) {
      const raw = await RawClient.open(h.port, pki, pki.devices.get(A)!);
      raw.send(connectPacket(A, 5));
      await raw.next('connack');
      raw.send({ cmd: 'publish', topic: `devices/${A}/state`, payload: Buffer.from('x'), qos: 0, dup: false, ...extra });
      expect(await raw.next('disconnect')).toMatchObject({ reasonCode: code });
    }
  });
});

describe('PUBLISH accepted', () => {
  it.each([4, 5] as const)('v%i: the four device topics reach accept() stamped with the device id', async (version) => {
    const c = await connectDevice(h, pki, A, version);
    try {
      const before = h.accepted.length;
      await c.publishAsync(`devices/${A}/diagnostics`, 'd', { qos: 1 });
      await c.publishAsync(`devices/${A}/telemetry`, 't', { qos: 1 });
      await c.publishAsync(`devices/${A}/state`, 's', { qos: 0 });
      await c.publishAsync(`devices/${A}/commands/cmd-9/result`, 'r', { qos: 1 });
      await until(() => h.accepted.length === before + 4);
      const got = h.accepted.slice(before).map((m) => [m.kind, m.commandId, m.payload.toString(), m.qos, m.deviceId]);
      expect(got).toEqual([
        ['diagnostics', undefined, 'd', 1, A],
        ['telemetry', undefined, 't', 1, A],
        ['state', undefined, 's', 0, A],
        ['command_result', 'cmd-9', 'r', 1, A],
      ]);
    } finally {
      await endClient(c);
    }
  });

  it('PUBACK is sent only after accept() resolves', async () => {
    const c = await connectDevice(h, pki, A, 5);
    try {
      h.holdStores();
      let acked = false;
      const before = h.accepted.length;
      const p = c.publishAsync(`devices/${A}/telemetry`, 'held', { qos: 1 }).then(() => (acked = true));
      await until(() => h.inFlightAccepts === 1);
      await sleep(200);
      expect(acked).toBe(false);
      expect(h.accepted.length).toBe(before);
      h.releaseStores();
      await p;
      expect(acked).toBe(true);
      expect(h.accepted.at(-1)?.payload.toString()).toBe('held');
    } finally {
      h.releaseStores();
      await endClient(c);
    }
  });

  it('PUBACKs leave in PUBLISH order even when stores finish out of order [MQTT-4.6.0-2]', async () => {
    const raw = await RawClient.open(h.port, pki, pki.devices.get(A)!);
    raw.send(connectPacket(A, 5));
    await raw.next('connack');
    h.holdStores();
    // Later publishes store faster: completion order is 5, 4, 3, 2, 1.
    h.delayFor = (m) => (6 - Number(m.payload.toString())) * 30;
    for (let id = 1; id <= 5; id++) {
      raw.send({ cmd: 'publish', topic: `devices/${A}/telemetry`, payload: Buffer.from(String(id)), qos: 1, messageId: id, dup: false, retain: false });
    }
    await until(() => h.inFlightAccepts === 5);
    expect(raw.packets.filter((p) => p.cmd === 'puback')).toHaveLength(0);
    h.releaseStores();
    await until(() => raw.packets.filter((p) => p.cmd === 'puback').length === 5);
    expect(raw.packets.filter((p) => p.cmd === 'puback').map((p) => p.messageId)).toEqual([1, 2, 3, 4, 5]);
    expect(h.accepted.slice(-5).map((m) => m.payload.toString())).toEqual(['5', '4', '3', '2', '1']);
    h.delayFor = undefined;
    raw.destroy();
  });
});
