import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryPublishRate } from '../../src/modules/gateway/index.js';
import { startHarness, type Harness } from './support/harness.js';
import { makePki, type Pki } from './support/pki.js';
import { RawClient } from './support/raw-client.js';
import * as w from './support/wire.js';

const A = randomUUID();
const RATE = 50;
let pki: Pki;
let h: Harness;

beforeAll(async () => {
  pki = await makePki([A]);
  h = await startHarness(pki, { sweepIntervalMs: 50, maxPublishesPerSecond: RATE });
});
afterAll(async () => {
  await h?.close();
  await pki?.dispose();
});

/** Connects, sends `n` QoS 0 PUBLISHes at once, waits until the gateway cut it or a short while passed. */
async function burst(n: number): Promise<void> {
  const raw = await RawClient.open(h.port, pki, pki.devices.get(A)!, 5);
  raw.send(w.connect({ version: 5, clientId: A }));
  await raw.next('connack');
  const frames: Buffer[] = [];
  for (let i = 0; i < n; i++) frames.push(w.publish({ version: 5, topic: `devices/${A}/telemetry`, payload: `{"i":${i}}` }));
  raw.send(Buffer.concat(frames));
  await raw.waitClosed(150);
  raw.destroy();
}

describe('defect 3: the publish rate is per device, across reconnects', () => {
  it('fail: reconnecting after DISCONNECT 0x96 does not refill the allowance', async () => {
    const stored = (): number => h.accepted.filter((m) => m.deviceId === A).length;
    const t0 = Date.now();
    let rounds = 0;
    // A device that reconnects as fast as it can and bursts each time, for about 1.5 s.
    while (Date.now() - t0 < 1500) {
      await burst(2 * RATE);
      rounds++;
    }
    const elapsed = (Date.now() - t0) / 1000;
    expect(rounds).toBeGreaterThan(3);
    // One bucket per device: at most its burst (one second's worth) plus the rate over the time.
    expect(stored()).toBeLessThanOrEqual(Math.ceil(RATE + RATE * elapsed) + 5);
    expect(h.refusals.filter((r) => r.deviceId === A && r.reason === 'rate_limited').length).toBeGreaterThanOrEqual(rounds - 2);
  });

  it("one device's flood does not spend another device's allowance", () => {
    const r = new MemoryPublishRate(10);
    for (let i = 0; i < 10; i++) expect(r.take('a', 1000)).toBe(true);
    expect(r.take('a', 1000)).toBe(false);
    expect(r.take('b', 1000)).toBe(true);
    expect(r.take('a', 1100)).toBe(true); // 100 ms at 10/s refills one
    expect(r.take('a', 1100)).toBe(false);
  });

  it('buckets of devices that went quiet are forgotten: memory follows active devices only', () => {
    const r = new MemoryPublishRate(100);
    for (let i = 0; i < 5000; i++) r.take(`d${i}`, 0);
    r.prune(5); // 5 ms: not yet refilled (one token takes 10 ms at 100/s)
    expect(r.size).toBe(5000);
    r.prune(1000);
    expect(r.size).toBe(0);
  });
});
