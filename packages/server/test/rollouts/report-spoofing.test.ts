/**
 * A device with valid credentials for itself cannot move another device's rollout: the gateway
 * pins every topic to the authenticated device id [MQTT-3.3.2-2 is about topic names; the
 * pinning is ours], so an update report published on another device's update topic is refused
 * and stored nowhere, and a report on its own topic counts only for its own name. Real gateway
 * (MQTT over mTLS), real rollout engine, on SQLite and PostgreSQL.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { deviceKey } from '../support/pki.js';
import { manufactured, provisionX509 } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { initRepo, offlineKeys, publishRelease } from '../updates/support/repo.js';
import { waitFor } from './rollout-support.js';

describe.each(DIALECTS)('update reports are pinned to the reporting device (%s)', (dialect) => {
  let t: TestServer;
  let release: { id: string; version: string };
  const robots: { id: string; name: string; client: MqttClient }[] = [];

  beforeAll(async () => {
    t = await startTestServer(dialect, { config: { rollouts: { tickIntervalMs: 100 } } });
    const keys = offlineKeys();
    await initRepo(t, keys);
    const r = await publishRelease(t, keys, { model: 'kuka-kr16', version: '2.0.0', content: randomBytes(1000) });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    release = r.body;
    await t.call('POST', '/v1/enrollments', { body: { label: 'robots', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'cell-{id8}' } } });
    for (let i = 0; i < 2; i++) {
      const m = await manufactured(t, 'kuka-kr16');
      const op = deviceKey();
      const p = await provisionX509(t, m, op.csrPem);
      expect(p.status, JSON.stringify(p.body)).toBe(200);
      const client = await mqtt.connectAsync(t.server.mqttUrl!, { clientId: m.id, protocolVersion: 5, key: op.keyPem, cert: p.body.chainPem, ca: p.body.caBundlePem, reconnectPeriod: 0, connectTimeout: 5000 });
      robots.push({ id: m.id, name: p.body.name, client });
    }
  }, 60_000);
  afterAll(async () => {
    for (const r of robots) await r.client.endAsync().catch(() => undefined);
    await t?.stop();
  });

  const targets = async (id: string) => (await t.call('GET', `/v1/rollouts/${id}/targets`)).body.targets as { name: string; status: string; deviceId: string | null }[];
  const reportsOf = async (deviceId: string) => t.server.store.db.selectFrom('device_update_reports').selectAll().where('device_id', '=', deviceId).execute();
  const publish = async (c: MqttClient, topic: string, payload: unknown): Promise<'acked' | 'refused'> => {
    try {
      await c.publishAsync(topic, typeof payload === 'string' ? payload : JSON.stringify(payload), { qos: 1 });
      return 'acked';
    } catch {
      return 'refused';
    }
  };

  test('fail: robot A cannot report a failure (or success) for robot B; its own report counts only for its own name', async () => {
    const [a, b] = robots as [(typeof robots)[0], (typeof robots)[0]];
    const r = await t.call('POST', '/v1/rollouts', { body: { release: release.id, select: 'name:cell-*', waves: [100], maxPerMinute: 1000, abortFailureRatio: 0.1, minExecuted: 1, timeout: '30m' } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    await waitFor('both assigned', async () => (await targets(r.body.id)).filter((x) => x.status === 'assigned').length === 2);

    // A on B's topic: refused by the gateway (PUBACK 0x87 Not authorized), nothing stored, B untouched.
    for (const phase of ['failed', 'installed'] as const) {
      const out = await publish(a.client, `devices/${b.id}/update`, { releaseId: release.id, version: '2.0.0', phase, ...(phase === 'failed' ? { code: 'UPDATE_INSTALL_FAILED' } : {}) });
      expect(out).toBe('refused');
    }
    // Malformed reports on A's own topic: refused, nothing stored.
    for (const bad of ['{', { releaseId: release.id, version: '2.0.0', phase: 'failed' }, { releaseId: release.id, version: '2.0.0', phase: 'installed', code: 'UPDATE_INSTALL_FAILED' }, { releaseId: release.id, version: 'x', phase: 'installed' }]) {
      if (a.client.disconnected || !a.client.connected) break;
      expect(await publish(a.client, `devices/${a.id}/update`, bad)).toBe('refused');
    }
    await new Promise((res) => setTimeout(res, 500));
    expect(await reportsOf(b.id)).toEqual([]);
    expect(await reportsOf(a.id)).toEqual([]);
    expect((await targets(r.body.id)).map((x) => x.status)).toEqual(['assigned', 'assigned']);

    // B's own installed report counts for B's name, with B's device id.
    expect(await publish(b.client, `devices/${b.id}/update`, { releaseId: release.id, version: '2.0.0', phase: 'installed' })).toBe('acked');
    const after = await waitFor('B installed', async () => {
      const ts = await targets(r.body.id);
      return ts.find((x) => x.name === b.name)?.status === 'installed' ? ts : undefined;
    });
    expect(after.find((x) => x.name === b.name)).toMatchObject({ status: 'installed', deviceId: b.id });
    expect(after.find((x) => x.name === a.name)).toMatchObject({ status: 'assigned', deviceId: null });
    expect((await t.call('GET', `/v1/rollouts/${r.body.id}`)).body.status).toBe('running');
  });
});
