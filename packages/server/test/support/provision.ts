import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSasToken } from '@fleetkey/crypto';
import { mtlsPost } from './mtls.js';
import { deviceKey, type DeviceKey } from './pki.js';
import type { TestServer } from './test-server.js';

export const bundleOf = (t: TestServer): string => readFileSync(join(t.dataDir, 'ca-bundle.pem'), 'utf8');

/** A manufactured device: registered, with an IDevID from our manufacturing CA (what `fleetkey manufacture` does). */
export async function manufactured(t: TestServer, model = 'kuka-kr16', serial?: string): Promise<{ id: string; idevid: DeviceKey; idevidChainPem: string }> {
  const id = (await t.call('POST', '/v1/devices', { body: { model, ...(serial === undefined ? {} : { serials: { controller: serial } }) } })).body.id as string;
  const idevid = deviceKey();
  const r = await t.call('POST', '/v1/certificates', { body: { deviceId: id, csr: idevid.csrPem, kind: 'idevid', validity: '3650d' } });
  if (r.status !== 201) throw new Error(`IDevID issuance failed: ${JSON.stringify(r.body)}`);
  return { id, idevid, idevidChainPem: r.body.chainPem as string };
}

export function provisionX509(t: TestServer, d: { idevid: DeviceKey; idevidChainPem: string }, csr = deviceKey().csrPem) {
  return mtlsPost(`${t.server.deviceUrl}/device/v1/provision/x509`, { csr }, { ca: bundleOf(t), cert: d.idevidChainPem, key: d.idevid.keyPem });
}

/** `ttlMs` sets the token's expiry: two tokens of one key expiring in the same second are the same token (a replay). */
export function provisionSymmetric(t: TestServer, deviceId: string, key: Buffer, csr = deviceKey().csrPem, resource = `provision/${deviceId}`, ttlMs = 300_000) {
  const token = createSasToken({ resource, expiresAt: new Date(Date.now() + ttlMs), key });
  return mtlsPost(`${t.server.deviceUrl}/device/v1/provision/symmetric`, { deviceId, token, csr }, { ca: bundleOf(t) });
}
