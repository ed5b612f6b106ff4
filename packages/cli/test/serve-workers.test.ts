/**
 * `fleetkey serve --workers N` (issue 15): N worker processes share the listeners (node:cluster)
 * and act as one server: each is a cluster node on the shared PostgreSQL, told of the others'
 * commits over the primary's IPC. A revocation answered by one worker cuts a session held by
 * another; both workers carry connections.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSasToken, deriveDeviceKey } from '@fleetkey/crypto';
import mqtt, { type IDisconnectPacket, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPgDatabase } from '../../server/test/support/databases.js';
import { mtlsPost } from '../../server/test/support/mtls.js';
import { deviceKey } from '../../server/test/support/pki.js';
import { adminApi, fleetkey, fleetkeyJson, serve } from './run-cli.js';

describe('fleetkey serve --workers', () => {
  test('fail: more than one worker on SQLite is a usage error (exit 2), nothing starts', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'fleetkey-workers-sqlite-'));
    try {
      const r = await fleetkey(cwd, ['serve', '--port', '0', '--workers', '2']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('needs PostgreSQL');
      const bad = await fleetkey(cwd, ['serve', '--port', '0', '--workers', '0']);
      expect(bad.code).toBe(2);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  describe('two workers on PostgreSQL', () => {
    let cwd: string;
    let pg: Awaited<ReturnType<typeof createPgDatabase>>;
    let server: Awaited<ReturnType<typeof serve>>;
    const clients: MqttClient[] = [];
    const info = () => JSON.parse(readFileSync(join(cwd, 'fleetkey-data', 'server.json'), 'utf8')) as { url: string; deviceUrl: string; mqttUrl: string };
    beforeAll(async () => {
      cwd = mkdtempSync(join(tmpdir(), 'fleetkey-workers-'));
      pg = await createPgDatabase();
      server = await serve(cwd, ['--workers', '2'], { DATABASE_URL: pg.url });
    });
    afterAll(async () => {
      for (const c of clients) c.end(true);
      await server?.stop();
      await pg?.drop();
      rmSync(cwd, { recursive: true, force: true });
    });

    test('the CLI lists both workers as nodes on the ipc bus; a revocation answered by any worker cuts the session wherever it is', async () => {
      const env = { FLEETKEY_URL: server.url };
      const nodes = await fleetkeyJson<{ bus: string; nodes: { state: string; pid: number }[] }>(cwd, ['cluster', 'nodes'], env);
      expect(nodes.bus).toBe('ipc');
      expect(nodes.nodes.filter((n) => n.state === 'alive')).toHaveLength(2);
      const api = adminApi(() => server.url, () => cwd);
      const g = (await api('POST', '/v1/enrollments', { label: 'sensors', kind: 'group', attestation: 'symmetric' })).body;
      const ca = readFileSync(join(cwd, 'fleetkey-data', 'ca-bundle.pem'), 'utf8');
      // Enough devices that both workers hold some (connections are handed out round-robin).
      const devices: { id: string; client: MqttClient }[] = [];
      for (let i = 0; i < 6; i++) {
        const id = (await api('POST', '/v1/devices', {})).body.id as string;
        const key = deriveDeviceKey(Buffer.from(g.groupKey, 'base64'), id);
        const token = createSasToken({ resource: `provision/${id}`, expiresAt: new Date(Date.now() + 300_000), key });
        expect((await mtlsPost(`${info().deviceUrl}/device/v1/provision/symmetric`, { deviceId: id, token, csr: deviceKey().csrPem }, { ca })).status).toBe(200);
        const client = await mqtt.connectAsync(info().mqttUrl, {
          clientId: id,
          username: id,
          password: createSasToken({ resource: `mqtt/${id}`, expiresAt: new Date(Date.now() + 300_000), key }),
          ca,
          protocolVersion: 5,
          reconnectPeriod: 0,
        });
        clients.push(client);
        devices.push({ id, client });
      }
      const held = await fleetkeyJson<{ nodes: { state: string; connectedDevices: number }[] }>(cwd, ['cluster', 'nodes'], env);
      const perWorker = held.nodes.filter((n) => n.state === 'alive').map((n) => n.connectedDevices);
      expect(perWorker.every((n) => n > 0), JSON.stringify(perWorker)).toBe(true);
      for (const d of devices) {
        const code = new Promise<number | undefined>((r) => d.client.once('disconnect', (p: IDisconnectPacket) => r(p.reasonCode)));
        expect((await api('POST', `/v1/devices/${d.id}/revoke`, { reason: 'stolen' })).status).toBe(200);
        expect(await code).toBe(0x98);
      }
    });
  });
});
