/**
 * "Each token accepted once" (README, symmetric-key attestation) must hold across a restart and
 * between server nodes: a provisioning token seen once (a TLS-terminating proxy's log, a device's
 * debug output) must not provision the device again, for anyone's key pair, within its lifetime.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSasToken } from '@fleetkey/crypto';
import { createServer, loadConfig, type FleetkeyServer } from '@fleetkey/server';
import { afterAll, describe, expect, test } from 'vitest';
import { createPgDatabase, DIALECTS } from '../support/databases.js';
import { mtlsPost } from '../support/mtls.js';
import { deviceKey } from '../support/pki.js';

describe.each(DIALECTS)('symmetric provisioning tokens are single use across restarts (%s)', (dialect) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'fleetkey-replay-'));
  let pg: { url: string; drop: () => Promise<void> } | undefined;
  let server: FleetkeyServer | undefined;
  afterAll(async () => {
    await server?.close();
    await pg?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const start = async (): Promise<FleetkeyServer> => {
    const config = loadConfig({
      env: { FLEETKEY_LOG_LEVEL: 'silent' },
      overrides: { dataDir, port: 0, host: '127.0.0.1', ...(pg === undefined ? {} : { databaseUrl: pg.url }) },
    });
    config.deviceHttp.port = 0;
    config.gateway.port = 0;
    return createServer(config);
  };
  const call = async (method: string, path: string, body: unknown) => {
    const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    const r = await fetch(`${server!.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return (await r.json()) as any;
  };
  const provision = (token: string, deviceId: string) =>
    mtlsPost(`${server!.deviceUrl}/device/v1/provision/symmetric`, { deviceId, token, csr: deviceKey().csrPem }, { ca: readFileSync(join(dataDir, 'ca-bundle.pem'), 'utf8') });

  test('fail: a token that provisioned a device is refused after the server restarts (no second certificate)', async () => {
    if (dialect === 'postgres') pg = await createPgDatabase();
    server = await start();
    const group = (await call('POST', '/v1/enrollments', { label: 'sensors', kind: 'group', attestation: 'symmetric' })).enrollment.id;
    const id = (await call('POST', '/v1/devices', {})).id;
    const key = Buffer.from((await call('POST', `/v1/enrollments/${group}/derived-keys`, { deviceId: id })).deviceKey, 'base64');
    const token = createSasToken({ resource: `provision/${id}`, expiresAt: new Date(Date.now() + 600_000), key });
    expect((await provision(token, id)).status).toBe(200);
    expect((await provision(token, id)).body.code).toBe('PROVISIONING_REFUSED');
    await server.close();
    server = await start();
    const replay = await provision(token, id);
    expect(replay.body.code, `status ${replay.status}`).toBe('PROVISIONING_REFUSED');
    const certs = (await server.store.db.selectFrom('certificates').select('serial').where('device_id', '=', id).where('kind', '=', 'operational').execute()).length;
    expect(certs).toBe(1);
    // A fresh token of the same key still provisions (re-provisioning policy `keep`).
    const fresh = createSasToken({ resource: `provision/${id}`, expiresAt: new Date(Date.now() + 900_000), key });
    expect((await provision(fresh, id)).status).toBe(200);
  }, 60_000);
});
