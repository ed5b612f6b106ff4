import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AK_ECC, EK_P256, EK_RSA, NOT_RESTRICTED } from '../../../crypto/test/support/tpm-fixtures.js';
import { mtlsPost } from '../support/mtls.js';
import { deviceKey } from '../support/pki.js';
import { bundleOf } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

// The happy path runs against a real TPM (swtpm) in packages/device/test/provision-tpm.test.ts;
// these refusals need only well-formed (or deliberately broken) public areas.
describe('TPM attestation refusals', () => {
  let t: TestServer;
  let deviceId: string;
  const url = (p: string) => `${t.server.deviceUrl}/device/v1/provision/tpm/${p}`;
  const post = (p: string, body: unknown) => mtlsPost(url(p), body, { ca: bundleOf(t) });
  const b64 = (b: Buffer) => b.toString('base64');
  const lastRefusal = async (subject: string) =>
    (await t.call('GET', `/v1/audit?subject=${subject}&limit=1000`)).body.entries.filter((e: { outcome: string }) => e.outcome === 'refused').at(-1);

  beforeAll(async () => {
    t = await startTestServer('sqlite', { config: { provisioning: { perSourcePerMinute: 600, perSourceBurst: 200, perDevicePerMinute: 60, perDeviceBurst: 20 } } });
    deviceId = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
    const ekSha = createHash('sha256').update(EK_RSA).digest('hex');
    const e = await t.call('POST', '/v1/enrollments', { body: { label: 'tpm unit', kind: 'individual', attestation: 'tpm', deviceId, ekPublicSha256: ekSha } });
    expect(e.status).toBe(201);
  });
  afterAll(async () => t?.stop());

  test('a pinned EK and a restricted AK get a MakeCredential challenge', async () => {
    const r = await post('start', { deviceId, ekPublic: b64(EK_RSA), akPublic: b64(AK_ECC) });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(Buffer.from(r.body.encryptedSecret, 'base64').length).toBe(2 + 256); // TPM2B, RSA-2048 OAEP
  });

  test('fail: a wrong credential proof, a reused or unknown challenge', async () => {
    const c = (await post('start', { deviceId, ekPublic: b64(EK_RSA), akPublic: b64(AK_ECC) })).body;
    const wrong = await post('finish', { challengeId: c.challengeId, secret: b64(randomBytes(32)), csr: deviceKey().csrPem });
    expect(wrong).toMatchObject({ status: 403, body: { code: 'PROVISIONING_REFUSED' } });
    expect((await lastRefusal('provisioning')).detail.reason).toContain('credential proof does not match');
    const unknown = await post('finish', { challengeId: randomUUID(), secret: b64(randomBytes(32)), csr: deviceKey().csrPem });
    expect(unknown.body.code).toBe('PROVISIONING_REFUSED');
    expect((await lastRefusal('provisioning')).detail.reason).toContain('unknown challenge');
    expect(await t.server.store.db.selectFrom('certificates').select('serial').where('device_id', '=', deviceId).execute()).toEqual([]);
  });

  test('fail: a wrong activation proof uses up the challenge (single use whatever the outcome)', async () => {
    const c = (await post('start', { deviceId, ekPublic: b64(EK_RSA), akPublic: b64(AK_ECC) })).body;
    expect((await post('finish', { challengeId: c.challengeId, secret: b64(randomBytes(32)), csr: deviceKey().csrPem })).body.code).toBe('PROVISIONING_REFUSED');
    const row = await t.server.store.db.selectFrom('provisioning_challenges').select('used_at').where('id', '=', c.challengeId).executeTakeFirstOrThrow();
    expect(row.used_at).not.toBeNull();
    expect((await post('finish', { challengeId: c.challengeId, secret: b64(randomBytes(32)), csr: deviceKey().csrPem })).body.code).toBe('PROVISIONING_REFUSED');
    expect((await lastRefusal('provisioning')).detail.reason).toContain('challenge already used');
  });

  test('fail: an enrollment that would admit unauthenticated evidence cannot be created (TPM individual with neither EK pin nor TPM roots)', async () => {
    const other = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
    const r = await t.call('POST', '/v1/enrollments', { body: { label: 'any EK', kind: 'individual', attestation: 'tpm', deviceId: other } });
    expect(r).toMatchObject({ status: 400, body: { code: 'ENROLLMENT_UNAUTHENTICATED' } });
    expect((await t.call('GET', '/v1/enrollments')).body.enrollments.some((e: { deviceId: string }) => e.deviceId === other)).toBe(false);
  });

  test('fail: an individual TPM enrollment trusting TPM roots (no pin) refuses an EK without a certificate from them', async () => {
    const other = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
    const roots = (await t.call('GET', '/v1/ca')).body.authorities.find((a: { role: string }) => a.role === 'root').certificatePem;
    const e = await t.call('POST', '/v1/enrollments', { body: { label: 'one robot, vendor roots', kind: 'individual', attestation: 'tpm', deviceId: other, trustAnchorsPem: roots } });
    expect(e.status).toBe(201);
    const r = await post('start', { deviceId: other, ekPublic: b64(EK_RSA), akPublic: b64(AK_ECC) });
    expect(r.body.code).toBe('PROVISIONING_REFUSED');
    expect((await lastRefusal(`device:${other}`)).detail.reason).toContain('no EK certificate');
  });

  test('fail: an AK that is not a restricted signing key, malformed structures, an EK other than the pinned one', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ ekPublic: b64(EK_RSA), akPublic: b64(NOT_RESTRICTED) }, /TPM structures refused.*restricted/],
      [{ ekPublic: b64(EK_RSA.subarray(0, 40)), akPublic: b64(AK_ECC) }, /TPM structures refused/],
      [{ ekPublic: b64(Buffer.concat([EK_RSA, Buffer.from([0])])), akPublic: b64(AK_ECC) }, /TPM structures refused/],
      [{ ekPublic: b64(EK_P256), akPublic: b64(AK_ECC) }, /EK differs/],
    ];
    for (const [body, reason] of cases) {
      const r = await post('start', { deviceId, ...body });
      expect(r.body.code).toBe('PROVISIONING_REFUSED');
      expect((await lastRefusal(`device:${deviceId}`)).detail.reason).toMatch(reason);
    }
  });

  test('fail: past its burst, one device is rate limited while another is not', async () => {
    const server = await startTestServer('sqlite');
    try {
      const noisy = (await server.call('POST', '/v1/devices', { body: {} })).body.id;
      const quiet = (await server.call('POST', '/v1/devices', { body: {} })).body.id;
      const start = (id: string) => mtlsPost(`${server.server.deviceUrl}/device/v1/provision/tpm/start`, { deviceId: id, ekPublic: b64(EK_RSA), akPublic: b64(AK_ECC) }, { ca: bundleOf(server) });
      const codes: string[] = [];
      for (let i = 0; i < 7; i++) codes.push((await start(noisy)).body.code);
      expect(codes.slice(0, 5)).toEqual(Array(5).fill('PROVISIONING_REFUSED')); // no enrollment: refused, but counted
      expect(codes.slice(5)).toEqual(['RATE_LIMITED', 'RATE_LIMITED']);
      expect((await start(quiet)).body.code).toBe('PROVISIONING_REFUSED');
    } finally {
      await server.stop();
    }
  });

  test('fail: a group TPM enrollment needs an EK certificate from its manufacturer roots', async () => {
    const other = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
    const roots = (await t.call('GET', '/v1/ca')).body.authorities.find((a: { role: string }) => a.role === 'root').certificatePem;
    await t.call('POST', '/v1/enrollments', { body: { label: 'tpm fleet', kind: 'group', attestation: 'tpm', trustAnchorsPem: roots } });
    const r = await post('start', { deviceId: other, ekPublic: b64(EK_RSA), akPublic: b64(AK_ECC) });
    expect(r.body.code).toBe('PROVISIONING_REFUSED');
    expect((await lastRefusal(`device:${other}`)).detail.reason).toContain('no EK certificate');
  });
});
