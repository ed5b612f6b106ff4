/**
 * Issue 11: provisioning challenges must not grow without bound. The nonce route answers anyone
 * (limited per source address only), so outstanding nonces are capped per source and in total,
 * and expired rows — nonces, used or not, and the ids of used symmetric tokens once the token has
 * expired — are deleted by the provisioning module's sweep, without reopening any of them.
 */
import { sign } from 'node:crypto';
import { createSasToken } from '@fleetkey/crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { mtlsPost } from '../support/mtls.js';
import { deviceKey } from '../support/pki.js';
import { bundleOf, manufactured } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const MINUTE = 60_000;

describe.each(DIALECTS)('provisioning challenges are capped and swept, on %s', (dialect) => {
  let t: TestServer;
  let offset = 0;
  beforeAll(async () => {
    t = await startTestServer(dialect, {
      clock: { now: () => Date.now() + offset },
      config: { provisioning: { maxOutstandingNonces: 5, maxOutstandingNoncesPerSource: 3, challengeSweepIntervalMs: 100 } },
    });
  });
  afterAll(async () => t?.stop());

  const nonce = (localAddress = '127.0.0.1') => mtlsPost(`${t.server.deviceUrl}/device/v1/provision/nonce`, {}, { ca: bundleOf(t), localAddress });
  const rows = async (kind?: string) => {
    let q = t.server.store.db.selectFrom('provisioning_challenges').select(['id', 'kind', 'used_at']);
    if (kind !== undefined) q = q.where('kind', '=', kind as 'nonce');
    return q.execute();
  };
  const sweeps = () => new Promise((r) => setTimeout(r, 600));
  const until = async (done: () => Promise<boolean>) => {
    for (let i = 0; i < 100 && !(await done()); i++) await new Promise((r) => setTimeout(r, 100));
  };

  test('fail: one source cannot hold more than its cap of unexpired nonces, nor all sources together more than the total (RATE_LIMITED, nothing stored)', async () => {
    for (let i = 0; i < 3; i++) expect((await nonce()).status).toBe(200);
    const fourth = await nonce();
    expect(fourth.body.code).toBe('RATE_LIMITED');
    expect(fourth.status).toBe(429);
    expect((await nonce('127.0.0.2')).status).toBe(200);
    expect((await nonce('127.0.0.3')).status).toBe(200);
    // Five outstanding in total: a fresh source is refused too.
    expect((await nonce('127.0.0.4')).body.code).toBe('RATE_LIMITED');
    expect(await rows('nonce')).toHaveLength(5);
    // Once they expire the caps free up again.
    offset += 6 * MINUTE;
    expect((await nonce()).status).toBe(200);
    expect((await nonce('127.0.0.4')).status).toBe(200);
  }, 60_000);

  test('fail: expired nonces and used token ids are deleted by the sweep, and neither a used nonce nor a used token is accepted again across it', async () => {
    // A nonce used to provision an IDevID device without mTLS.
    expect((await t.call('POST', '/v1/enrollments', { body: { label: 'robots', kind: 'group', attestation: 'x509' } })).status).toBe(201);
    const d = await manufactured(t);
    const n = (await nonce('127.0.0.5')).body.nonce as string;
    const signed = { idevidChainPem: d.idevidChainPem, nonce: n, nonceSignature: sign('sha256', Buffer.from(n, 'utf8'), d.idevid.key).toString('base64') };
    const byNonce = () => mtlsPost(`${t.server.deviceUrl}/device/v1/provision/x509`, { csr: deviceKey().csrPem, ...signed }, { ca: bundleOf(t) });
    expect((await byNonce()).status).toBe(200);
    // A symmetric token used once (its id is a `sas` row until it expires).
    const group = (await t.call('POST', '/v1/enrollments', { body: { label: 'sensors', kind: 'group', attestation: 'symmetric' } })).body.enrollment.id;
    const id = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
    const key = Buffer.from((await t.call('POST', `/v1/enrollments/${group}/derived-keys`, { body: { deviceId: id } })).body.deviceKey, 'base64');
    const token = createSasToken({ resource: `provision/${id}`, expiresAt: new Date(Date.now() + offset + 2 * MINUTE), key });
    const bySas = () => mtlsPost(`${t.server.deviceUrl}/device/v1/provision/symmetric`, { deviceId: id, token, csr: deviceKey().csrPem }, { ca: bundleOf(t) });
    expect((await bySas()).status).toBe(200);
    expect(await rows('sas')).toHaveLength(1);

    // Sweeps while both are unexpired delete neither, and neither is accepted again.
    offset += MINUTE;
    await sweeps();
    expect((await rows('sas')).length).toBe(1);
    expect((await rows('nonce')).filter((r) => r.id === n && r.used_at !== null)).toHaveLength(1);
    expect((await byNonce()).body.code).toBe('PROVISIONING_REFUSED');
    expect((await bySas()).body.code).toBe('PROVISIONING_REFUSED');

    // Past expiry (and the sweep's grace for other nodes' clocks) every row goes.
    offset += 11 * MINUTE;
    await until(async () => (await rows()).length === 0);
    expect(await rows()).toEqual([]);
    expect((await byNonce()).body.code).toBe('PROVISIONING_REFUSED');
    expect((await bySas()).body.code).toBe('PROVISIONING_REFUSED');
    expect(await rows()).toEqual([]);
  }, 60_000);
});
