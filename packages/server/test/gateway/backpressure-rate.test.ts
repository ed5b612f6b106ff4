import { randomUUID } from 'node:crypto';
import type { IPublishPacket } from 'mqtt-packet';
import * as mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, startHarness, until, type Harness } from './support/harness.js';
import { makePki, type Pki } from './support/pki.js';
import { connectPacket, RawClient } from './support/raw-client.js';

const A = randomUUID();
const RATE = 50;
let pki: Pki;
let h: Harness;

beforeAll(async () => {
  pki = await makePki([A]);
  h = await startHarness(pki, { sweepIntervalMs: 50, maxPendingStores: 4, maxPublishesPerSecond: RATE });
});
afterAll(async () => {
  await h?.close();
  await pki?.dispose();
});

// Regression (found by bench/gateway): while the gateway stops reading a socket because storage
// lags, a device sending within its rate queues messages in TCP; on resume they arrive together
// and were counted as a burst over the limit, disconnecting a well-behaved device (0x96).
describe('rate limit and backpressure together', () => {
  it('a device that stayed within its rate is not cut when the backlog of a pause is read at once', async () => {
    const raw = await RawClient.open(h.port, pki, pki.devices.get(A)!, 4);
    raw.send(connectPacket(A, 4), 4);
    await raw.next('connack');
    h.holdStores();
    const total = RATE * 3;
    for (let i = 0; i < total; i++) {
      const packet: IPublishPacket = { cmd: 'publish', topic: `devices/${A}/telemetry`, payload: Buffer.from(JSON.stringify({ i })), qos: 0, dup: false, retain: false };
      raw.socket.write(mqttPacket.generate(packet, { protocolVersion: 4 }));
      await sleep(1000 / RATE + 2); // just under the allowed rate
    }
    h.releaseStores();
    await until(() => h.accepted.length === total, 10_000, 'all stored');
    expect(raw.socket.destroyed).toBe(false);
    expect(h.refusals.filter((r) => r.reason === 'rate_limited')).toEqual([]);
  });
});
