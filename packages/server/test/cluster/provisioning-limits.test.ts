/**
 * Issue 15 follow-up: the provisioning rate limits (per source address, per device identity) hold
 * across the nodes of a cluster. Two nodes on one PostgreSQL database and one NATS server; an
 * attacker alternates between them (as a round-robin load balancer would for it) and still gets
 * only the configured burst in total, not one burst per node.
 */
import { createSasToken } from '@fleetkey/crypto';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { mtlsPost } from '../support/mtls.js';
import { deviceKey } from '../support/pki.js';
import { bundleOf } from '../support/provision.js';
import { startCluster, type ClusterNode, type TestCluster } from './support/cluster.js';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 120_000 });

// Refill of one unit a minute: nothing comes back during the test.
const SOURCE_BURST = 6;
const DEVICE_BURST = 3;

describe('provisioning rate limits across a cluster of two nodes', () => {
  let c: TestCluster;
  let nodes: ClusterNode[];
  beforeAll(async () => {
    c = await startCluster(['inprocess', 'inprocess'], {}, (cfg) => {
      cfg.provisioning.perSourcePerMinute = 1;
      cfg.provisioning.perSourceBurst = SOURCE_BURST;
      cfg.provisioning.perDevicePerMinute = 1;
      cfg.provisioning.perDeviceBurst = DEVICE_BURST;
    });
    nodes = c.nodes;
  });
  afterAll(async () => c?.stop());

  test(`fail: one source address alternating between the nodes gets ${SOURCE_BURST} provisioning nonces in total, then 429 RATE_LIMITED on both`, async () => {
    const codes: string[] = [];
    for (let i = 0; i < SOURCE_BURST * 2; i++) {
      const n = nodes[i % 2]!;
      const r = await mtlsPost(`${n.deviceUrl}/device/v1/provision/nonce`, {}, { ca: bundleOf(n.t), localAddress: '127.0.7.1' });
      codes.push(r.status === 200 ? 'ok' : `${r.status} ${r.body.code}`);
    }
    expect(codes).toEqual([...Array(SOURCE_BURST).fill('ok'), ...Array(SOURCE_BURST).fill('429 RATE_LIMITED')]);
    // Another source is not affected.
    const other = await mtlsPost(`${nodes[1]!.deviceUrl}/device/v1/provision/nonce`, {}, { ca: bundleOf(nodes[1]!.t), localAddress: '127.0.7.2' });
    expect(other.status).toBe(200);
  });

  test(`fail: one device identity tried from many source addresses on both nodes gets ${DEVICE_BURST} attempts in total, then 429 RATE_LIMITED`, async () => {
    const g = (await nodes[0]!.t.call('POST', '/v1/enrollments', { body: { label: 'sensors', kind: 'group', attestation: 'symmetric' } })).body;
    expect(typeof g.groupKey).toBe('string');
    const id = (await nodes[0]!.t.call('POST', '/v1/devices', { body: {} })).body.id as string;
    const codes: string[] = [];
    for (let i = 0; i < DEVICE_BURST * 2; i++) {
      const n = nodes[i % 2]!;
      // A guessed key: every attempt is a refusal, and each one is a try at the device's secret.
      const token = createSasToken({ resource: `provision/${id}`, expiresAt: new Date(Date.now() + 300_000), key: randomBytes(32) });
      const r = await mtlsPost(`${n.deviceUrl}/device/v1/provision/symmetric`, { deviceId: id, token, csr: deviceKey().csrPem }, { ca: bundleOf(n.t), localAddress: `127.0.8.${i + 1}` });
      codes.push(`${r.status} ${r.body.code}`);
    }
    expect(codes).toEqual([...Array(DEVICE_BURST).fill(codes[0]), ...Array(DEVICE_BURST).fill('429 RATE_LIMITED')]);
    expect(codes[0]).not.toBe('429 RATE_LIMITED');
  });
});
