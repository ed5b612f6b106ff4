import { randomUUID } from 'node:crypto';
import type { IDisconnectPacket } from 'mqtt-packet';
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

function disconnectCode(c: import('mqtt').MqttClient): Promise<number | undefined> {
  return new Promise((r) => c.once('disconnect', (p: IDisconnectPacket) => r(p.reasonCode)));
}

describe('one session per device', () => {
  it('v5: a second connection takes over; the first gets DISCONNECT 0x8E [MQTT-3.1.4-3]', async () => {
    const first = await connectDevice(h, pki, A, 5);
    const code = disconnectCode(first);
    const firstClosed = new Promise<void>((r) => first.once('close', () => r()));
    const second = await connectDevice(h, pki, A, 5);
    try {
      expect(await code).toBe(0x8e);
      await firstClosed;
      expect(h.gw.isConnected(A)).toBe(true);
      expect(h.gw.connectionCount()).toBe(1);
      expect(h.disconnects.at(-1)).toMatchObject({ deviceId: A, reason: 'takeover' });
      await second.publishAsync(`devices/${A}/state`, 'still-here', { qos: 1 });
    } finally {
      await endClient(first);
      await endClient(second);
    }
  });

  it('v4: the first connection is closed on takeover', async () => {
    const first = await connectDevice(h, pki, A, 4);
    const firstClosed = new Promise<void>((r) => first.once('close', () => r()));
    const second = await connectDevice(h, pki, A, 4);
    await firstClosed;
    expect(second.connected).toBe(true);
    await endClient(first);
    await endClient(second);
  });
});

describe('disconnectDevice', () => {
  it('fail: an unknown device → 0 sessions closed', () => {
    expect(h.gw.disconnectDevice(randomUUID(), 'administrative')).toBe(0);
  });

  it('administrative: the v5 device gets DISCONNECT 0x98 within 1 s', async () => {
    const c = await connectDevice(h, pki, A, 5);
    const code = disconnectCode(c);
    const t0 = Date.now();
    expect(h.gw.disconnectDevice(A, 'administrative')).toBe(1);
    expect(await code).toBe(0x98);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(h.gw.isConnected(A)).toBe(false);
    expect(h.disconnects.at(-1)).toMatchObject({ deviceId: A, reason: 'administrative' });
    await endClient(c);
  });

  it('revoked: the v5 device gets 0x87 and a v4 device is closed', async () => {
    const c5 = await connectDevice(h, pki, A, 5);
    const code = disconnectCode(c5);
    h.gw.disconnectDevice(A, 'revoked');
    expect(await code).toBe(0x87);
    const c4 = await connectDevice(h, pki, B, 4);
    const closed = new Promise<void>((r) => c4.once('close', () => r()));
    h.gw.disconnectDevice(B, 'revoked');
    await closed;
    await endClient(c5);
    await endClient(c4);
  });
});

describe('keep-alive', () => {
  it('fail: silent past 1.5× keep-alive → v5 DISCONNECT 0x8D and close [MQTT-3.1.2-24]; a pinging client stays', async () => {
    const silent = await RawClient.open(h.port, pki, pki.devices.get(A)!);
    const pinging = await RawClient.open(h.port, pki, pki.devices.get(B)!);
    silent.send(connectPacket(A, 5, { keepalive: 1 }));
    pinging.send(connectPacket(B, 5, { keepalive: 1 }));
    await silent.next('connack');
    await pinging.next('connack');
    const t0 = Date.now();
    const timer = setInterval(() => pinging.send({ cmd: 'pingreq' }), 400);
    try {
      expect(await silent.waitClosed(3000)).toBe(true);
      const elapsed = Date.now() - t0;
      expect(elapsed).toBeGreaterThanOrEqual(1400);
      expect(elapsed).toBeLessThan(2500);
      expect(silent.packets.find((p) => p.cmd === 'disconnect')).toMatchObject({ reasonCode: 0x8d });
      await sleep(300);
      expect(pinging.closed).toBe(false);
      expect(pinging.packets.filter((p) => p.cmd === 'pingresp').length).toBeGreaterThanOrEqual(3);
    } finally {
      clearInterval(timer);
      pinging.destroy();
    }
    expect(h.disconnects.find((d) => d.deviceId === A && d.reason === 'keepalive_timeout')).toBeDefined();
  });
});

describe('shutdown', () => {
  it('close(): v5 devices get DISCONNECT 0x8B and the listener stops', async () => {
    const own = await startHarness(pki);
    const c = await connectDevice(own, pki, A, 5);
    const code = disconnectCode(c);
    await own.close();
    expect(await code).toBe(0x8b);
    await expect(connectDevice(own, pki, A, 5)).rejects.toThrow();
    await endClient(c);
  });
});
