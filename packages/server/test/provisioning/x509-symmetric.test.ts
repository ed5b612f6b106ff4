import { createSign, X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { mtlsPost } from '../support/mtls.js';
import { csrFor, deviceKey } from '../support/pki.js';
import { bundleOf, manufactured, provisionSymmetric, provisionX509 } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const auditReason = async (t: TestServer, deviceId: string) => {
  const a = await t.call('GET', `/v1/audit?subject=device:${deviceId}&limit=1000`);
  return a.body.entries.filter((e: { outcome: string }) => e.outcome === 'refused').at(-1);
};

describe.each(DIALECTS)('provisioning by X.509 and symmetric key on %s', (dialect) => {
  let t: TestServer;
  let x509Group: string;
  beforeAll(async () => {
    // The webhook receiving device.evidence_mismatch listens on loopback.
    t = await startTestServer(dialect, { config: { webhooks: { allowPrivateDestinations: ['127.0.0.1/32'] } } });
    const g = await t.call('POST', '/v1/enrollments', {
      body: { label: 'robots', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'cell-{serial}' }, tags: { site: 'plant-1' }, certificateValidity: '7d' },
    });
    expect(g.status).toBe(201);
    x509Group = g.body.enrollment.id;
  });
  afterAll(async () => t?.stop());

  test('two robots with birth certificates provision over mTLS, get names from the template and operational certificates', async () => {
    for (const serial of ['a1', 'b2']) {
      const d = await manufactured(t, 'kuka-kr16', serial);
      const op = deviceKey();
      const r = await provisionX509(t, d, op.csrPem);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toMatchObject({ deviceId: d.id, name: `cell-${serial}` });
      expect(JSON.stringify(r.body)).not.toContain('PRIVATE KEY');
      const cert = new X509Certificate(r.body.certificatePem);
      expect(cert.subject).toBe(`CN=${d.id}`);
      expect(cert.checkIssued(new X509Certificate(r.body.chainPem.split('-----END CERTIFICATE-----')[1] + '-----END CERTIFICATE-----'))).toBe(true);
      const life = Date.parse(cert.validTo) - Date.parse(cert.validFrom);
      expect(life).toBe(7 * 86_400_000 + 5 * 60_000);
      expect((await t.call('GET', `/v1/devices/${d.id}`)).body).toMatchObject({ status: 'provisioned', name: `cell-${serial}` });
      expect((await t.call('GET', `/v1/names/cell-${serial}`)).body.tags).toEqual({ site: 'plant-1' });
      const certs = (await t.call('GET', `/v1/certificates?deviceId=${d.id}`)).body.certificates;
      expect(certs.find((c: { kind: string }) => c.kind === 'operational').method).toBe(`x509:${x509Group}`);
    }
    expect((await t.call('GET', `/v1/enrollments/${x509Group}`)).body.devicesProvisioned).toBe(2);
  });

  test('re-provisioning under `keep` keeps the name and supersedes the previous certificate', async () => {
    const d = await manufactured(t, 'kuka-kr16', 'c3');
    const first = await provisionX509(t, d);
    const again = await provisionX509(t, d);
    expect(again.status).toBe(200);
    expect(again.body.name).toBe('cell-c3');
    const certs = (await t.call('GET', `/v1/certificates?deviceId=${d.id}`)).body.certificates.filter((c: { kind: string }) => c.kind === 'operational');
    expect(certs.map((c: { status: string }) => c.status).sort()).toEqual(['superseded', 'valid']);
    expect(new X509Certificate(first.body.certificatePem).serialNumber).not.toBe(new X509Certificate(again.body.certificatePem).serialNumber);
  });

  test('without mTLS, a signed single-use nonce proves possession of the IDevID key', async () => {
    const d = await manufactured(t, 'kuka-kr16', 'd4');
    const url = `${t.server.deviceUrl}/device/v1/provision`;
    const { nonce } = (await mtlsPost(`${url}/nonce`, {}, { ca: bundleOf(t) })).body;
    const sig = createSign('sha256').update(nonce).sign(d.idevid.key).toString('base64');
    const body = { csr: deviceKey().csrPem, idevidChainPem: d.idevidChainPem, nonce, nonceSignature: sig };
    const r = await mtlsPost(`${url}/x509`, body, { ca: bundleOf(t) });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const replay = await mtlsPost(`${url}/x509`, { ...body, csr: deviceKey().csrPem }, { ca: bundleOf(t) });
    expect(replay.body.code).toBe('PROVISIONING_REFUSED');
    expect((await auditReason(t, d.id)).detail.reason).toContain('unknown, used or expired nonce');
    const other = deviceKey();
    const { nonce: n2 } = (await mtlsPost(`${url}/nonce`, {}, { ca: bundleOf(t) })).body;
    const forged = await mtlsPost(`${url}/x509`, { ...body, nonce: n2, nonceSignature: createSign('sha256').update(n2).sign(other.key).toString('base64'), csr: deviceKey().csrPem }, { ca: bundleOf(t) });
    expect(forged.body.code).toBe('PROVISIONING_REFUSED');
  });

  describe('X.509 refusals: neutral to the device, precise in the audit log, nothing issued', () => {
    test('fail: a CSR whose key is the IDevID key', async () => {
      const d = await manufactured(t, 'kuka-kr16', 'e5');
      const r = await provisionX509(t, d, csrFor(d.idevid.keyPem));
      expect(r).toMatchObject({ status: 403, body: { code: 'PROVISIONING_REFUSED' } });
      expect((await auditReason(t, d.id)).code).toBe('CERT_KEY_REUSED');
    });

    test('fail: a revoked IDevID, and a revoked device', async () => {
      const d = await manufactured(t, 'kuka-kr16', 'f6');
      const idevid = (await t.call('GET', `/v1/certificates?deviceId=${d.id}`)).body.certificates[0];
      await t.call('POST', `/v1/certificates/${idevid.serial}/revoke`, { body: { reason: 'keyCompromise' } });
      expect((await provisionX509(t, d)).body.code).toBe('PROVISIONING_REFUSED');
      expect((await auditReason(t, d.id)).detail.reason).toContain('revoked');
      const d2 = await manufactured(t, 'kuka-kr16', 'g7');
      await t.call('POST', `/v1/devices/${d2.id}/revoke`, { body: {} });
      expect((await provisionX509(t, d2)).body.code).toBe('PROVISIONING_REFUSED');
    });

    test('fail: an IDevID from an untrusted CA (a self-made one, not our manufacturing CA)', async () => {
      const d = await manufactured(t);
      // An operational certificate from our issuing CA is not a birth certificate.
      const k = deviceKey();
      const op = await t.call('POST', '/v1/certificates', { body: { deviceId: d.id, csr: k.csrPem } });
      const r = await provisionX509(t, { idevid: k, idevidChainPem: op.body.chainPem });
      expect(r.body.code).toBe('PROVISIONING_REFUSED');
      expect((await auditReason(t, d.id)).detail.reason).toMatch(/untrusted|chain refused/);
    });

    test('fail: a disabled individual enrollment blocks just that device inside an enabled group', async () => {
      const d = await manufactured(t, 'kuka-kr16', 'h8');
      const ind = await t.call('POST', '/v1/enrollments', { body: { label: 'hold h8', kind: 'individual', attestation: 'x509', deviceId: d.id } });
      await t.call('POST', `/v1/enrollments/${ind.body.enrollment.id}/disable`);
      expect((await provisionX509(t, d)).body.code).toBe('PROVISIONING_REFUSED');
      expect((await auditReason(t, d.id)).detail.reason).toContain('disabled');
      const other = await manufactured(t, 'kuka-kr16', 'i9');
      expect((await provisionX509(t, other)).status).toBe(200);
    });

    test('fail: no client certificate and no nonce', async () => {
      const r = await mtlsPost(`${t.server.deviceUrl}/device/v1/provision/x509`, { csr: deviceKey().csrPem }, { ca: bundleOf(t) });
      expect(r.body.code).toBe('PROVISIONING_REFUSED');
    });
  });

  describe('symmetric keys', () => {
    let groupId: string;
    let groupKey: Buffer;
    beforeAll(async () => {
      const g = await t.call('POST', '/v1/enrollments', { body: { label: 'sensors', kind: 'group', attestation: 'symmetric', maxDevices: 2, reprovisioning: 'never' } });
      groupId = g.body.enrollment.id;
      groupKey = Buffer.from(g.body.groupKey, 'base64');
      expect(groupKey).toHaveLength(32);
      expect(JSON.stringify((await t.call('GET', `/v1/enrollments/${groupId}`)).body)).not.toContain(g.body.groupKey);
    });

    test('a device provisions with its derived key (HMAC-SHA256(groupKey, deviceId)); the station only ever sees that key', async () => {
      const id = (await t.call('POST', '/v1/devices', { body: { model: 'sensor' } })).body.id;
      const derived = await t.call('POST', `/v1/enrollments/${groupId}/derived-keys`, { body: { deviceId: id } });
      const r = await provisionSymmetric(t, id, Buffer.from(derived.body.deviceKey, 'base64'));
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.name).toBeNull(); // pending allocation
    });

    test('fail: wrong key, tampered resource, replayed token, `never` re-provisioning, device limit', async () => {
      const id = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
      const key = Buffer.from((await t.call('POST', `/v1/enrollments/${groupId}/derived-keys`, { body: { deviceId: id } })).body.deviceKey, 'base64');
      expect((await provisionSymmetric(t, id, Buffer.alloc(32, 1))).body.code).toBe('PROVISIONING_REFUSED');
      expect((await provisionSymmetric(t, id, key, deviceKey().csrPem, `provision/${id}x`)).body.code).toBe('PROVISIONING_REFUSED');
      const { createSasToken } = await import('@fleetkey/crypto');
      const token = createSasToken({ resource: `provision/${id}`, expiresAt: new Date(Date.now() + 60_000), key });
      const url = `${t.server.deviceUrl}/device/v1/provision/symmetric`;
      expect((await mtlsPost(url, { deviceId: id, token, csr: deviceKey().csrPem }, { ca: bundleOf(t) })).status).toBe(200);
      expect((await mtlsPost(url, { deviceId: id, token, csr: deviceKey().csrPem }, { ca: bundleOf(t) })).body.code).toBe('PROVISIONING_REFUSED');
      expect((await auditReason(t, id)).detail.reason).toMatch(/replayed|never/);
      const third = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
      const k3 = Buffer.from((await t.call('POST', `/v1/enrollments/${groupId}/derived-keys`, { body: { deviceId: third } })).body.deviceKey, 'base64');
      expect((await provisionSymmetric(t, third, k3)).body.code).toBe('PROVISIONING_REFUSED');
      expect((await auditReason(t, third)).detail.reason).toContain('limit');
    });

    test('fail: an expired token, a CSR whose signature is not by the key it names, an unknown device', async () => {
      const open = (await t.call('POST', '/v1/enrollments', { body: { label: 'open sensors', kind: 'group', attestation: 'symmetric' } })).body.enrollment.id;
      const id = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
      const key = Buffer.from((await t.call('POST', `/v1/enrollments/${open}/derived-keys`, { body: { deviceId: id } })).body.deviceKey, 'base64');
      const { createSasToken } = await import('@fleetkey/crypto');
      const url = `${t.server.deviceUrl}/device/v1/provision/symmetric`;
      const expired = createSasToken({ resource: `provision/${id}`, expiresAt: new Date(Date.now() - 1000), key });
      expect((await mtlsPost(url, { deviceId: id, token: expired, csr: deviceKey().csrPem }, { ca: bundleOf(t) })).body.code).toBe('PROVISIONING_REFUSED');
      expect((await auditReason(t, id)).detail.reason).toContain('expired');
      // A CSR naming one key but signed by another: swap the SubjectPublicKeyInfo of two CSRs.
      const a = Buffer.from(deviceKey().csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      const b = Buffer.from(deviceKey().csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      const spki = (der: Buffer) => der.indexOf(Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107', 'hex'));
      const swapped = Buffer.from(a);
      b.copy(swapped, spki(a), spki(b), spki(b) + 91);
      const csr = `-----BEGIN CERTIFICATE REQUEST-----\n${swapped.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
      const r = await provisionSymmetric(t, id, key, csr);
      expect(r.body.code).toBe('PROVISIONING_REFUSED');
      expect((await auditReason(t, id)).code).toBe('CSR_SIGNATURE_INVALID');
      // No enrollment admits a device nobody registered and no group vouches for.
      const stranger = '0d1f2e3c-4b5a-4697-8a1b-2c3d4e5f6a7b';
      expect((await provisionSymmetric(t, stranger, Buffer.alloc(32, 9))).body.code).toBe('PROVISIONING_REFUSED');
      expect((await t.call('GET', `/v1/devices/${stranger}`)).body.code).toBe('DEVICE_NOT_FOUND');
    });

    test('fail: an expired or disabled enrollment', async () => {
      const e = await t.call('POST', '/v1/enrollments', { body: { label: 'expired', kind: 'group', attestation: 'symmetric', expiresAt: new Date(Date.now() - 1000).toISOString() } });
      const id = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
      const { deriveDeviceKey } = await import('@fleetkey/crypto');
      const r = await provisionSymmetric(t, id, deriveDeviceKey(Buffer.from(e.body.groupKey, 'base64'), id));
      expect(r.body.code).toBe('PROVISIONING_REFUSED');
    });
  });

  // Issue 10: evidence bound to the physical identity. The first admission records what proved the
  // device (IDevID issuer + serial + key, or the symmetric key id); any later one must match.
  describe('evidence is bound to the physical identity', () => {
    let attacker: { id: string; key: Buffer };
    let hook: string;
    beforeAll(async () => {
      const g = await t.call('POST', '/v1/enrollments', { body: { label: 'other vendor sensors', kind: 'group', attestation: 'symmetric' } });
      attacker = { id: g.body.enrollment.id, key: Buffer.from(g.body.groupKey, 'base64') };
      const h = await t.call('POST', '/v1/webhooks', { body: { url: 'http://127.0.0.1:9/evidence', events: ['device.evidence_mismatch'] } });
      expect(h.status, JSON.stringify(h.body)).toBe(201);
      hook = h.body.webhook.id;
    });
    const derive = async (enrollment: string, deviceId: string) =>
      Buffer.from((await t.call('POST', `/v1/enrollments/${enrollment}/derived-keys`, { body: { deviceId } })).body.deviceKey, 'base64');
    const mismatches = async (deviceId: string) =>
      (await t.server.store.db.selectFrom('events').selectAll().where('type', '=', 'device.evidence_mismatch').where('subject', '=', `device:${deviceId}`).execute()).map(
        (e) => JSON.parse(e.payload) as Record<string, unknown>,
      );

    test('fail: a symmetric group key cannot take over a device admitted by X.509: refused, audited as a takeover attempt, device.evidence_mismatch delivered to webhooks, victim untouched', async () => {
      const victim = await manufactured(t, 'kuka-kr16', 'v1');
      const first = await provisionX509(t, victim);
      expect(first.status).toBe(200);
      const r = await provisionSymmetric(t, victim.id, await derive(attacker.id, victim.id));
      expect(r).toMatchObject({ status: 403, body: { code: 'PROVISIONING_REFUSED' } });
      const audit = await auditReason(t, victim.id);
      expect(audit).toMatchObject({ action: 'provisioning.symmetric', code: 'PROVISIONING_REFUSED' });
      expect(audit.detail.attempt).toBe('takeover');
      expect(audit.detail.reason).toMatch(/evidence.*x509.*symmetric|recorded.*x509/);
      const events = await mismatches(victim.id);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ deviceId: victim.id, presented: { method: 'symmetric' }, recorded: { method: 'x509' } });
      const deliveries = (await t.call('GET', `/v1/webhooks/${hook}/deliveries?limit=100`)).body.deliveries;
      expect(deliveries.some((d: { eventType: string }) => d.eventType === 'device.evidence_mismatch')).toBe(true);
      const certs = (await t.call('GET', `/v1/certificates?deviceId=${victim.id}`)).body.certificates.filter((c: { kind: string }) => c.kind === 'operational');
      expect(certs.map((c: { status: string }) => c.status)).toEqual(['valid']); // not superseded by the attacker's
      expect((await t.call('GET', `/v1/devices/${victim.id}`)).body.name).toBe('cell-v1');
    });

    test('fail: a device manufactured with our IDevID cannot be first admitted with other evidence', async () => {
      const victim = await manufactured(t, 'kuka-kr16', 'v2');
      const r = await provisionSymmetric(t, victim.id, await derive(attacker.id, victim.id));
      expect(r.body.code).toBe('PROVISIONING_REFUSED');
      expect((await auditReason(t, victim.id)).detail.attempt).toBe('takeover');
      expect(await mismatches(victim.id)).toHaveLength(1);
      expect((await provisionX509(t, victim)).status).toBe(200); // the real robot still provisions
    });

    test('fail: a symmetric device cannot be re-admitted with another group\'s key; the same key re-admits it', async () => {
      const id = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
      const open = (await t.call('POST', '/v1/enrollments', { body: { label: 'open sensors 2', kind: 'group', attestation: 'symmetric' } })).body;
      expect((await provisionSymmetric(t, id, await derive(open.enrollment.id, id))).status).toBe(200);
      expect((await provisionSymmetric(t, id, await derive(attacker.id, id))).body.code).toBe('PROVISIONING_REFUSED');
      expect((await auditReason(t, id)).detail.attempt).toBe('takeover');
      // A fresh token (another expiry): the same token twice would be refused as a replay.
      expect((await provisionSymmetric(t, id, await derive(open.enrollment.id, id), deviceKey().csrPem, `provision/${id}`, 600_000)).status).toBe(200);
    });

    test('fail: two first admissions of one device with different evidence race: exactly one is recorded, the other is a takeover attempt', async () => {
      const own = (await t.call('POST', '/v1/enrollments', { body: { label: 'race sensors', kind: 'group', attestation: 'symmetric' } })).body.enrollment.id;
      for (let round = 0; round < 3; round++) {
        const id = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
        const [a, b] = await Promise.all([provisionSymmetric(t, id, await derive(own, id)), provisionSymmetric(t, id, await derive(attacker.id, id))]);
        expect([a.status, b.status].sort()).toEqual([200, 403]);
        const winner = a.status === 200 ? 'race sensors' : 'other vendor sensors';
        const ev = (await t.call('GET', `/v1/devices/${id}/evidence`)).body.current;
        const enrollments = (await t.call('GET', '/v1/enrollments')).body.enrollments as { id: string; label: string }[];
        expect(enrollments.find((e) => e.id === ev.enrollmentId)?.label).toBe(winner);
        expect((await auditReason(t, id)).detail.attempt).toBe('takeover');
      }
    });

    test('fail: a device provisioned before evidence was recorded (migration 009) is re-admitted only by its method, which then records the evidence', async () => {
      const open = (await t.call('POST', '/v1/enrollments', { body: { label: 'legacy sensors', kind: 'group', attestation: 'symmetric' } })).body.enrollment.id;
      const id = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
      expect((await provisionSymmetric(t, id, await derive(open, id))).status).toBe(200);
      await t.server.store.db.deleteFrom('device_evidence').where('device_id', '=', id).execute(); // as provisioned before 007
      // A birth certificate issued for it later (a manufacturing token misused) is other evidence.
      const idevid = deviceKey();
      const issued = await t.call('POST', '/v1/certificates', { body: { deviceId: id, csr: idevid.csrPem, kind: 'idevid', validity: '3650d' } });
      expect(issued.status).toBe(201);
      expect((await provisionX509(t, { idevid, idevidChainPem: issued.body.chainPem })).body.code).toBe('PROVISIONING_REFUSED');
      expect((await auditReason(t, id)).detail).toMatchObject({ attempt: 'takeover', reason: expect.stringMatching(/provisioned by symmetric before its evidence was recorded/) });
      const again = await provisionSymmetric(t, id, await derive(open, id), deviceKey().csrPem, `provision/${id}`, 600_000);
      expect(again.status, JSON.stringify(await auditReason(t, id))).toBe(200);
      expect((await t.call('GET', `/v1/devices/${id}/evidence`)).body.current).toMatchObject({ method: 'symmetric', enrollmentId: open });
    });

    test('an admin resets a repaired device\'s evidence with a reason; the next admission records the new one; an operator cannot', async () => {
      const victim = await manufactured(t, 'kuka-kr16', 'v3');
      expect((await provisionX509(t, victim)).status).toBe(200);
      const shown = await t.call('GET', `/v1/devices/${victim.id}/evidence`);
      expect(shown.body.current).toMatchObject({ method: 'x509' });
      const ops = (await t.call('POST', '/v1/tokens', { body: { role: 'operator', name: 'ops' } })).body.secret;
      const forbidden = await t.call('POST', `/v1/devices/${victim.id}/evidence/reset`, { token: ops, body: { reason: 'new controller' } });
      expect(forbidden).toMatchObject({ status: 403, body: { code: 'FORBIDDEN' } });
      expect((await t.call('POST', `/v1/devices/${victim.id}/evidence/reset`, { body: {} })).body.code).toBe('VALIDATION_FAILED'); // a reason is required
      const reset = await t.call('POST', `/v1/devices/${victim.id}/evidence/reset`, { body: { reason: 'controller replaced, now a symmetric key' } });
      expect(reset.status, JSON.stringify(reset.body)).toBe(200);
      expect(reset.body).toMatchObject({ current: null, history: [{ method: 'x509', resetReason: 'controller replaced, now a symmetric key' }] });
      const again = await t.call('POST', `/v1/devices/${victim.id}/evidence/reset`, { body: { reason: 'twice' } });
      expect(again.body.code).toBe('DEVICE_EVIDENCE_NOT_RECORDED');
      const audit = (await t.call('GET', `/v1/audit?subject=device:${victim.id}&action=device.evidence_reset&limit=10`)).body.entries;
      expect(audit.map((e: { outcome: string }) => e.outcome)).toEqual(['success', 'refused']);
      expect(audit[0].detail).toMatchObject({ reason: 'controller replaced, now a symmetric key', previous: { method: 'x509' } });
      const events = await t.server.store.db.selectFrom('events').select('payload').where('type', '=', 'device.evidence_reset').where('subject', '=', `device:${victim.id}`).execute();
      expect(events.map((e) => JSON.parse(e.payload))).toEqual([expect.objectContaining({ deviceId: victim.id, reason: 'controller replaced, now a symmetric key', previous: expect.objectContaining({ method: 'x509' }) })]);
      // The device's IDevID is still valid: the reset lets other evidence in, and records it.
      expect((await provisionSymmetric(t, victim.id, await derive(attacker.id, victim.id))).status).toBe(200);
      expect((await t.call('GET', `/v1/devices/${victim.id}/evidence`)).body.current).toMatchObject({ method: 'symmetric' });
      expect((await provisionX509(t, victim)).body.code).toBe('PROVISIONING_REFUSED');
    });
  });
});
