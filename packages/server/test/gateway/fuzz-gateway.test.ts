/**
 * The gateway survives every byte: a structure-aware fuzz campaign (support/fuzz) of at least
 * 50,000 raw packets, every MQTT 3.1.1 and 5 packet type, mutated, over mTLS from authenticated
 * devices and from connections that never authenticate, while a well-behaved device publishes
 * QoS 1 throughout. FUZZ_SEED=<n> replays a campaign; the seed is printed either way.
 * The long form: `npm run fuzz -- --packets 1000000`.
 */
import { describe, expect, it } from 'vitest';
import { runCampaign, summary } from './support/fuzz/campaign.js';

const PACKETS = Number(process.env['FUZZ_PACKETS'] ?? 50_000);
const SEED = Number(process.env['FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));

describe('fuzzing the live gateway with raw frames', () => {
  it(`fail: ${PACKETS} fuzzed packets cause no crash, no lost acknowledgement for a good device, no lasting memory (seed ${SEED})`, async () => {
    console.log(`fuzz seed ${SEED} (replay: FUZZ_SEED=${SEED} npx vitest run packages/server/test/gateway/fuzz-gateway.test.ts)`);
    const r = await runCampaign({ packets: PACKETS, seed: SEED, log: (l) => console.log(l) });
    console.log(summary(r));
    expect(r.crashDetail).toBeUndefined();
    expect(r.crashes).toBe(0);
    expect(r.packetsSent).toBeGreaterThanOrEqual(PACKETS);
    // Faults the gateway survived (0x83 to that connection) are still defects: none expected.
    expect(r.faults).toEqual([]);
    expect(r.good.errors).toBe(0);
    expect(r.good.disconnects).toBe(0);
    expect(r.good.acked).toBe(r.good.sent);
    expect(r.good.sent).toBeGreaterThan(100);
    expect(r.servingAfter).toBe(true);
    // Back near the baseline once every fuzz connection is gone (after a full GC in the gateway).
    expect(r.heapAfter - r.heapBefore).toBeLessThan(16 * 1024 * 1024);
  }, 240_000);
});
