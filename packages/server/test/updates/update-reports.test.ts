/**
 * Issue 12 contract, server side of `devices/{id}/update` on SQLite and PostgreSQL: the gateway
 * validates each report, stores it with the device's bound name, sets the installed version on
 * `installed`, emits `device.update_reported` (with its audit entry), and the registry answers
 * by installed version. Refusals first: malformed reports and reports about another device.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { FleetEvent } from '../../src/modules/events/event-bus.js';
import { DIALECTS } from '../support/databases.js';
import { deviceKey } from '../support/pki.js';
import { bundleOf, manufactured, provisionX509 } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

describe.each(DIALECTS)('device update reports (%s)', (dialect) => {
  let t: TestServer;
  const devs: { id: string; name: string; client: MqttClient }[] = [];
  const events: FleetEvent[] = [];

  beforeAll(async () => {
    t = await startTestServer(dialect, { logger: (await import('pino')).pino({ level: 'silent' }), config: { gateway: { enabled: true, host: '127.0.0.1', port: 0 } } });
    await t.call('POST', '/v1/enrollments', { body: { label: 'r', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'rep-{id8}' } } });
    for (let i = 0; i < 2; i++) {
      const m = await manufactured(t);
      const op = deviceKey();
      const r = await provisionX509(t, m, op.csrPem);
      const client = await mqtt.connectAsync(t.server.mqttUrl!, { clientId: m.id, key: op.keyPem, cert: r.body.chainPem, ca: bundleOf(t), protocolVersion: 5, reconnectPeriod: 0 }, false);
      devs.push({ id: m.id, name: r.body.name, client });
    }
    t.server.bus.subscribe((e) => {
      if (e.type === 'device.update_reported') events.push(e);
    });
  });
  afterAll(async () => {
    for (const d of devs) await d.client.endAsync(true).catch(() => undefined);
    await t?.stop();
  });

  const reports = (deviceId: string) => t.server.store.db.selectFrom('device_update_reports').selectAll().where('device_id', '=', deviceId).execute();

  test('fail: malformed reports are refused (PUBACK 0x99) and store nothing', async () => {
    const d = devs[0]!;
    const bad = [
      'not json',
      '{}',
      '{"releaseId":"r1","version":"1.0.0","phase":"exploded"}',
      '{"releaseId":"r1","version":"1.0","phase":"installed"}',
      '{"releaseId":"r1","version":"1.0.0","phase":"failed"}',
      '{"releaseId":"r1","version":"1.0.0","phase":"installed","code":"UPDATE_ROLLBACK"}',
      '{"releaseId":"r1","version":"1.0.0","phase":"failed","code":"NO_SUCH_CODE"}',
      '{"releaseId":"r1","version":"1.0.0","phase":"downloading","progress":1.5}',
      '{"releaseId":"r1","version":"1.0.0","phase":"installed","extra":true}',
      '{"releaseId":"../x","version":"1.0.0","phase":"installed"}',
    ];
    for (const body of bad) await expect(d.client.publishAsync(`devices/${d.id}/update`, body, { qos: 1 })).rejects.toMatchObject({ code: 0x99 });
    expect(await reports(d.id)).toEqual([]);
  });

  test('fail: a device cannot report for another device (0x87), nothing stored', async () => {
    const [a, b] = devs as [(typeof devs)[0], (typeof devs)[0]];
    await expect(a.client.publishAsync(`devices/${b.id}/update`, '{"releaseId":"r1","version":"9.0.0","phase":"installed"}', { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
    expect(await reports(b.id)).toEqual([]);
    expect((await t.call('GET', `/v1/devices/${b.id}`)).body.installedVersion).toBeNull();
  });

  test('reports are stored with the bound name; installed sets the version; events and audit follow', async () => {
    const d = devs[0]!;
    const seq = [
      { releaseId: 'rel-1', version: '1.2.0', phase: 'downloading', progress: 0.5 },
      { releaseId: 'rel-1', version: '1.2.0', phase: 'installing' },
      { releaseId: 'rel-1', version: '1.2.0', phase: 'installed' },
      { releaseId: 'rel-2', version: '1.3.0', phase: 'failed', code: 'UPDATE_BELOW_FLOOR' },
    ];
    for (const r of seq) await d.client.publishAsync(`devices/${d.id}/update`, JSON.stringify(r), { qos: 1 });
    const rows = await reports(d.id);
    expect(rows.map((r) => [r.phase, r.code, r.release_id])).toEqual([
      ['downloading', null, 'rel-1'],
      ['installing', null, 'rel-1'],
      ['installed', null, 'rel-1'],
      ['failed', 'UPDATE_BELOW_FLOOR', 'rel-2'],
    ]);
    expect(rows.every((r) => r.name_id !== null)).toBe(true);
    const dev = (await t.call('GET', `/v1/devices/${d.id}`)).body;
    expect(dev).toMatchObject({ installedVersion: '1.2.0', installedReleaseId: 'rel-1' });
    expect(typeof dev.installedAt).toBe('string');
    const mine = events.filter((e) => (e.payload as { deviceId: string }).deviceId === d.id);
    expect(mine.map((e) => (e.payload as { phase: string }).phase)).toEqual(['downloading', 'installing', 'installed', 'failed']);
    expect(mine[3]!.payload).toMatchObject({ nameId: rows[3]!.name_id, releaseId: 'rel-2', version: '1.3.0', code: 'UPDATE_BELOW_FLOOR' });
    const audit = await t.server.store.db.selectFrom('audit_log').select('action').where('action', '=', 'device.update_report').where('subject', '=', `device:${d.id}`).execute();
    expect(audit).toHaveLength(4);
    const listed = (await t.call('GET', '/v1/devices?installedVersion=1.2.0')).body.devices.map((x: { id: string }) => x.id);
    expect(listed).toEqual([d.id]);
    expect((await t.call('GET', '/v1/devices?installedVersion=bad%20version')).status).toBe(400);
  });
});
