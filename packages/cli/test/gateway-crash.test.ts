import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSasToken, deriveDeviceKey } from '@fleetkey/crypto';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mtlsPost } from '../../server/test/support/mtls.js';
import { deviceKey } from '../../server/test/support/pki.js';
import { adminApi, serve } from './run-cli.js';

describe('a gateway crash loses no QoS 1 message it acknowledged', () => {
  let cwd: string;
  let server: Awaited<ReturnType<typeof serve>>;
  const data = () => join(cwd, 'fleetkey-data');
  const info = () => JSON.parse(readFileSync(join(data(), 'server.json'), 'utf8')) as { url: string; deviceUrl: string; mqttUrl: string };
  const api = async (method: string, path: string, body?: unknown) => (await adminApi(() => info().url, () => cwd)(method, path, body)).body;
  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'fleetkey-crash-'));
    server = await serve(cwd);
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  test('SIGKILL while a device streams QoS 1 telemetry; after restart every acknowledged message is stored', async () => {
    const g = await api('POST', '/v1/enrollments', { label: 'sensors', kind: 'group', attestation: 'symmetric' });
    const id = (await api('POST', '/v1/devices', {})).id as string;
    const key = deriveDeviceKey(Buffer.from(g.groupKey, 'base64'), id);
    const ca = readFileSync(join(data(), 'ca-bundle.pem'), 'utf8');
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
    client.on('error', () => {}); // the crash surfaces as a socket error; the assertions below judge it
    const acked = new Set<number>();
    let killed = false;
    const total = 900; // under the per-connection burst (1,000 PUBLISH/s): the crash, not the rate limit, must cut it
    // MQTT.js does not honour the server's Receive Maximum, so keep a window of QoS 1 in flight.
    let next = 0;
    const sender = async () => {
      while (next < total && !client.disconnected) {
        const seq = next++;
        try {
          await client.publishAsync(`devices/${id}/telemetry`, JSON.stringify({ seq }), { qos: 1 });
          acked.add(seq);
          if (!killed && acked.size >= 150) {
            killed = true;
            server.proc.kill('SIGKILL');
          }
        } catch {
          return;
        }
      }
    };
    await Promise.race([Promise.all(Array.from({ length: 16 }, sender)), new Promise<void>((r) => client.on('close', () => setTimeout(r, 200)))]);
    client.end(true);
    expect(killed).toBe(true);
    expect(acked.size).toBeGreaterThanOrEqual(150);
    expect(acked.size).toBeLessThan(total); // the crash really interrupted the stream

    server = await serve(cwd);
    const points = (await api('GET', `/v1/data/telemetry?deviceId=${id}&limit=10000`)).points as { payload: { seq: number } }[];
    const stored = new Set(points.map((p) => p.payload.seq));
    const lost = [...acked].filter((s) => !stored.has(s));
    expect(lost).toEqual([]);
  });
});
