import { randomUUID } from 'node:crypto';
import type { IPublishPacket } from 'mqtt-packet';
import * as mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, until, type Harness } from './support/harness.js';
import { makePki, type Pki } from './support/pki.js';
import { connectPacket, RawClient } from './support/raw-client.js';

const A = randomUUID();
const PENDING_BOUND = 8;
let pki: Pki;
let h: Harness;

beforeAll(async () => {
  pki = await makePki([A]);
  h = await startHarness(pki, { sweepIntervalMs: 50, maxPendingStores: PENDING_BOUND, maxPublishesPerSecond: 10_000_000 });
});
afterAll(async () => {
  await h?.close();
  await pki?.dispose();
});

describe('backpressure', () => {
  it('slow stores pause reading: bounded pending work, sender held back by TCP, nothing acknowledged lost', async () => {
    const raw = await RawClient.open(h.port, pki, pki.devices.get(A)!, 4);
    raw.send(connectPacket(A, 4), 4);
    await raw.next('connack');
    h.holdStores();
    const N = 30_000;
    const qos1 = new Map<number, number>(); // packet id → message index
    const frames: Buffer[] = [];
    for (let i = 0; i < N; i++) {
      const payload = Buffer.alloc(1024, 0x61);
      payload.writeUInt32BE(i, 0);
      const isQos1 = i % 10 === 0;
      const packet: IPublishPacket = { cmd: 'publish', topic: `devices/${A}/telemetry`, payload, qos: isQos1 ? 1 : 0, dup: false, retain: false };
      if (isQos1) {
        packet.messageId = (i / 10 + 1) % 65_536 || 1;
        qos1.set(packet.messageId, i);
      }
      frames.push(mqttPacket.generate(packet, { protocolVersion: 4 }));
    }
    raw.socket.write(Buffer.concat(frames));

    await until(() => h.gw.stats().pausedConnections === 1, 3000, 'pause');
    // Give the sender every chance to push more: the gateway must not read it.
    await new Promise((r) => setTimeout(r, 300));
    const stats = h.gw.stats();
    expect(stats.pendingStores).toBeLessThanOrEqual(PENDING_BOUND);
    expect(h.inFlightAccepts).toBeLessThanOrEqual(PENDING_BOUND);
    // ~30 MiB were written; most of it is still on the sender's side (its socket buffer and the
    // kernel), not in the gateway.
    expect(raw.socket.writableLength).toBeGreaterThan(10 * 1024 * 1024);
    expect(raw.packets.filter((p) => p.cmd === 'puback')).toHaveLength(0);

    // Slow but flowing stores from now on.
    h.delayFor = (m) => (m.payload.readUInt32BE(0) % 500 === 0 ? 2 : 0);
    h.releaseStores();
    await until(() => h.accepted.length === N, 20_000, 'all stored');
    h.delayFor = undefined;
    expect(h.maxInFlightAccepts).toBeLessThanOrEqual(PENDING_BOUND);
    const seen = new Set(h.accepted.map((m) => m.payload.readUInt32BE(0)));
    expect(seen.size).toBe(N);
    // Every QoS 1 PUBACK arrives, and only for stored messages.
    await until(() => raw.packets.filter((p) => p.cmd === 'puback').length === N / 10, 5000, 'pubacks');
    expect(h.gw.stats().pausedConnections).toBe(0);
    expect(h.gw.isConnected(A)).toBe(true);
    raw.destroy();
  });

  it('a failing store is never acknowledged: the connection closes so the device resends', async () => {
    const own = await startHarness(pki);
    try {
      const raw = await RawClient.open(own.port, pki, pki.devices.get(A)!, 5);
      raw.send(connectPacket(A, 5));
      await raw.next('connack');
      own.delayFor = () => {
        throw new Error('disk full');
      };
      raw.send({ cmd: 'publish', topic: `devices/${A}/state`, payload: Buffer.from('x'), qos: 1, messageId: 4, dup: false, retain: false });
      expect(await raw.next('disconnect')).toMatchObject({ reasonCode: 0x89 });
      expect(raw.packets.filter((p) => p.cmd === 'puback')).toHaveLength(0);
      expect(own.gw.stats().storeFailures).toBe(1);
    } finally {
      await own.close();
    }
  });
});
