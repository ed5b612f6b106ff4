import { randomUUID } from 'node:crypto';
import type { IPublishPacket } from 'mqtt-packet';
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

describe('SUBSCRIBE', () => {
  it.each([
    [4, 0x80],
    [5, 0x87],
  ] as const)('fail-v%i: filters other than the own command filters get %i', async (version, failure) => {
    const raw = await RawClient.open(h.port, pki, pki.devices.get(A)!, version);
    raw.send(connectPacket(A, version), version);
    await raw.next('connack');
    const filters = [`devices/${B}/commands/+`, '#', `devices/${A}/#`, `devices/${A}/telemetry`, `$share/g/devices/${A}/commands/+`, `devices/${A}/commands/+`];
    raw.send({ cmd: 'subscribe', messageId: 3, subscriptions: filters.map((topic) => ({ topic, qos: 1 as const })) }, version);
    const suback = await raw.next('suback');
    // $share/… is 0x9E in v5 (Shared Subscriptions not supported, issue 11), 0x80 in v3.1.1.
    const shared = version === 5 ? 0x9e : failure;
    expect(suback).toMatchObject({ messageId: 3, granted: [failure, failure, failure, failure, shared, 1] });
    expect(h.refusals.filter((r) => r.reason === 'subscribe_not_allowed' && r.deviceId === A).length).toBeGreaterThanOrEqual(5);
    raw.destroy();
  });

  it('QoS 2 subscription is granted QoS 1; UNSUBSCRIBE stops delivery', async () => {
    const c = await connectDevice(h, pki, A, 5);
    try {
      const granted = await c.subscribeAsync(`devices/${A}/commands/#`, { qos: 2 });
      expect(granted[0]?.qos).toBe(1);
      await c.unsubscribeAsync(`devices/${A}/commands/#`);
      expect(h.gw.sendCommand(A, 'after-unsub', Buffer.from('x'))).toBe(false);
    } finally {
      await endClient(c);
    }
  });
});

describe('commands to devices', () => {
  it('fail: sendCommand to an offline or unsubscribed device returns false', async () => {
    expect(h.gw.sendCommand(B, 'c0', Buffer.from('x'))).toBe(false);
    const c = await connectDevice(h, pki, B, 5);
    expect(h.gw.sendCommand(B, 'c0', Buffer.from('x'))).toBe(false);
    await endClient(c);
    expect(() => h.gw.sendCommand(B, 'bad/id', Buffer.from('x'))).toThrow(/topic/);
  });

  it.each([4, 5] as const)('v%i: QoS 1 command delivered, PUBACK → onCommandAcked', async (version) => {
    const c = await connectDevice(h, pki, A, version);
    try {
      await c.subscribeAsync(`devices/${A}/commands/+`, { qos: 1 });
      const got = new Promise<[string, string]>((r) => c.once('message', (t, p) => r([t, p.toString()])));
      const cid = `reboot-${version}`;
      expect(h.gw.sendCommand(A, cid, Buffer.from('{"op":"reboot"}'))).toBe(true);
      expect(await got).toEqual([`devices/${A}/commands/${cid}`, '{"op":"reboot"}']);
      await until(() => h.acked.some((a) => a.commandId === cid));
      expect(h.acked.find((a) => a.commandId === cid)).toEqual({ deviceId: A, commandId: cid, reasonCode: 0 });
    } finally {
      await endClient(c);
    }
  });

  it('pending commands are redelivered on (re)subscribe until acknowledged', async () => {
    h.pending.set(A, [{ commandId: 'pend-1', payload: Buffer.from('p1') }]);
    // First session: a device that receives but never acknowledges.
    const raw = await RawClient.open(h.port, pki, pki.devices.get(A)!);
    raw.send(connectPacket(A, 5));
    await raw.next('connack');
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `devices/${A}/commands/+`, qos: 1 }] });
    const first = (await raw.next('publish')) as IPublishPacket | undefined;
    expect(first).toMatchObject({ topic: `devices/${A}/commands/pend-1`, qos: 1, dup: false });
    raw.destroy();
    await until(() => !h.gw.isConnected(A));
    expect(h.acked.some((a) => a.commandId === 'pend-1')).toBe(false);
    // Second session: MQTT.js acknowledges.
    const c = await connectDevice(h, pki, A, 5);
    try {
      const got = new Promise<string>((r) => c.once('message', (t) => r(t)));
      await c.subscribeAsync(`devices/${A}/commands/+`, { qos: 1 });
      expect(await got).toBe(`devices/${A}/commands/pend-1`);
      await until(() => h.acked.some((a) => a.commandId === 'pend-1'));
      expect(h.pending.get(A)).toEqual([]);
    } finally {
      await endClient(c);
    }
  });

  it('v4 CleanSession=0: a resumed session gets unacknowledged commands again with DUP=1, without resubscribing', async () => {
    h.pending.set(B, [{ commandId: 'dup-1', payload: Buffer.from('d') }]);
    const raw = await RawClient.open(h.port, pki, pki.devices.get(B)!, 4);
    raw.send(connectPacket(B, 4, { clean: false }), 4);
    await raw.next('connack');
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `devices/${B}/commands/#`, qos: 1 }] }, 4);
    expect(await raw.next('publish')).toMatchObject({ dup: false, topic: `devices/${B}/commands/dup-1` });
    raw.destroy();
    await until(() => !h.gw.isConnected(B));
    const raw2 = await RawClient.open(h.port, pki, pki.devices.get(B)!, 4);
    raw2.send(connectPacket(B, 4, { clean: false }), 4);
    expect(await raw2.next('connack')).toMatchObject({ sessionPresent: true });
    const again = (await raw2.next('publish')) as IPublishPacket | undefined;
    expect(again).toMatchObject({ dup: true, qos: 1, topic: `devices/${B}/commands/dup-1` });
    raw2.send({ cmd: 'puback', messageId: again?.messageId ?? 0 }, 4);
    await until(() => h.acked.some((a) => a.commandId === 'dup-1'));
    raw2.destroy();
  });

  it('the in-flight window is bounded by the device Receive Maximum; the rest waits in order', async () => {
    const raw = await RawClient.open(h.port, pki, pki.devices.get(A)!);
    raw.send(connectPacket(A, 5, { properties: { receiveMaximum: 2 } }));
    await raw.next('connack');
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `devices/${A}/commands/+`, qos: 1 }] });
    await raw.next('suback');
    h.pending.set(A, []);
    for (const id of ['w1', 'w2', 'w3', 'w4']) expect(h.gw.sendCommand(A, id, Buffer.from(id))).toBe(true);
    await sleep(100);
    const pubs = () => raw.packets.filter((p): p is IPublishPacket => p.cmd === 'publish');
    expect(pubs().map((p) => p.topic.split('/').pop())).toEqual(['w1', 'w2']);
    raw.send({ cmd: 'puback', messageId: pubs()[0]?.messageId ?? 0 });
    await until(() => pubs().length === 3);
    expect(pubs()[2]?.topic.endsWith('/w3')).toBe(true);
    raw.destroy();
  });
});
