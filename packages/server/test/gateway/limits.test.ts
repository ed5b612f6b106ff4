import { randomUUID } from 'node:crypto';
import type { IPublishPacket } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, until, type Harness } from './support/harness.js';
import { makePki, type Pki } from './support/pki.js';
import { connectPacket, RawClient } from './support/raw-client.js';

const A = randomUUID();
let pki: Pki;
let h: Harness;

beforeAll(async () => {
  pki = await makePki([A]);
  h = await startHarness(pki, {
    sweepIntervalMs: 50,
    maxPacketBytes: 4096,
    maxTopicLength: 64,
    maxPublishesPerSecond: 50,
    receiveMaximum: 4,
    maxWriteBufferBytes: 64 * 1024,
    maxInflightPerConn: 1000,
    maxQueuedCommands: 0,
  });
});
afterAll(async () => {
  await h?.close();
  await pki?.dispose();
});

async function connected(version: 4 | 5): Promise<RawClient> {
  const raw = await RawClient.open(h.port, pki, pki.devices.get(A)!, version);
  raw.send(connectPacket(A, version), version);
  expect(await raw.next('connack')).toBeDefined();
  return raw;
}

const publish = (topic: string, payload: Buffer, qos: 0 | 1, messageId?: number): IPublishPacket => ({
  cmd: 'publish', topic, payload, qos, dup: false, retain: false, ...(messageId !== undefined ? { messageId } : {}),
});

describe('packet size', () => {
  it('fail-v5: a packet over maxPacketBytes → DISCONNECT 0x95', async () => {
    const raw = await connected(5);
    raw.send(publish(`devices/${A}/telemetry`, Buffer.alloc(5000), 0));
    expect(await raw.next('disconnect')).toMatchObject({ reasonCode: 0x95 });
    expect(await raw.waitClosed()).toBe(true);
    expect(h.refusals.at(-1)).toMatchObject({ reason: 'packet_too_large' });
  });

  it('fail: refused from the fixed header alone — a declared 200 MB packet is never buffered', async () => {
    const raw = await connected(4);
    // PUBLISH header with Remaining Length 200,000,000 and only a few body bytes.
    raw.send(Buffer.from([0x30, 0x80, 0x84, 0xaf, 0x5f, 0x00, 0x04, 0x61, 0x62]));
    expect(await raw.waitClosed(1000)).toBe(true);
  });

  it('fail-v5: a topic over maxTopicLength → PUBACK 0x90 (QoS 1)', async () => {
    const raw = await connected(5);
    raw.send(publish(`devices/${A}/commands/${'x'.repeat(40)}/result`, Buffer.from('r'), 1, 9));
    expect(await raw.next('puback')).toMatchObject({ messageId: 9, reasonCode: 0x90 });
    raw.destroy();
  });
});

describe('flow control', () => {
  it('fail-v5: more unacknowledged QoS 1 than Receive Maximum → DISCONNECT 0x93 [MQTT-3.3.4-9]', async () => {
    const raw = await connected(5);
    h.holdStores();
    try {
      for (let id = 1; id <= 5; id++) raw.send(publish(`devices/${A}/state`, Buffer.from('s'), 1, id));
      expect(await raw.next('disconnect')).toMatchObject({ reasonCode: 0x93 });
    } finally {
      h.releaseStores();
    }
  });

  it('fail-v5: publishing faster than maxPublishesPerSecond → DISCONNECT 0x96', async () => {
    const raw = await connected(5);
    for (let i = 0; i < 80; i++) raw.send(publish(`devices/${A}/telemetry`, Buffer.from('t'), 0));
    expect(await raw.next('disconnect')).toMatchObject({ reasonCode: 0x96 });
    expect(h.refusals.at(-1)).toMatchObject({ reason: 'rate_limited' });
  });

  it('fail: a device that never reads is cut off once its write buffer passes the cap', async () => {
    const raw = await connected(5);
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `devices/${A}/commands/+`, qos: 1 }] });
    await raw.next('suback');
    raw.socket.pause(); // never read again
    const big = Buffer.alloc(256 * 1024, 1);
    let sent = 0;
    for (let i = 0; i < 400 && h.gw.isConnected(A); i++) {
      if (h.gw.sendCommand(A, `big-${i}`, big)) sent++;
      await new Promise((r) => setImmediate(r));
    }
    await until(() => !h.gw.isConnected(A), 3000, 'disconnect');
    expect(h.disconnects.at(-1)).toMatchObject({ deviceId: A, reason: 'write_buffer_overflow' });
    // Cut off long before all 400 × 256 KiB (100 MiB) were queued.
    expect(sent).toBeLessThan(400);
    raw.destroy();
  });
});

describe('protocol violations', () => {
  it.each([
    ['a second CONNECT', connectPacket(A, 5), 0x82],
    ['PUBREL (QoS 2 flow)', { cmd: 'pubrel', messageId: 1 }, 0x82],
    ['AUTH (no enhanced auth)', { cmd: 'auth', reasonCode: 0x18 }, 0x82],
  ] as const)('fail-v5: %s → DISCONNECT %i', async (_what, packet, code) => {
    const raw = await connected(5);
    raw.send(packet as never);
    expect(await raw.next('disconnect')).toMatchObject({ reasonCode: code });
    expect(await raw.waitClosed()).toBe(true);
  });

  it('fail-v5: a malformed packet → DISCONNECT 0x81 [MQTT-4.8.0-1]', async () => {
    const raw = await connected(5);
    // SUBSCRIBE with reserved flags 0000 instead of 0010 [MQTT-2.2.2-2].
    raw.send(Buffer.from([0x80, 0x02, 0x00, 0x01]));
    expect(await raw.next('disconnect')).toMatchObject({ reasonCode: 0x81 });
  });
});
