import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIGNATURE_HEADER, verifyWebhook } from '@fleetkey/protocol';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { deviceKey } from '../support/pki.js';
import { manufactured, provisionX509 } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

describe('the enrollment allow/deny webhook (fail closed)', () => {
  let t: TestServer;
  let receiver: Server;
  let secret = '';
  let flips = 0;
  const answers = new Map<string, () => { status: number; body: string; delayMs?: number }>();
  const seen: { deviceId: string; verified: boolean; model: string | null }[] = [];
  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        const body = JSON.parse(raw) as { deviceId: string; model: string | null };
        seen.push({ deviceId: body.deviceId, model: body.model, verified: verifyWebhook(secret, req.headers[SIGNATURE_HEADER] as string, raw, Math.floor(Date.now() / 1000)).ok });
        const a: { status: number; body: string; delayMs?: number } = (answers.get(body.deviceId) ?? (() => ({ status: 200, body: '{"allow":false}' })))();
        setTimeout(() => res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body), a.delayMs ?? 0);
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    // The receiver is on loopback, refused by default: allowlisted explicitly (issue 11 item 11).
    t = await startTestServer('sqlite', {
      config: { webhooks: { allowPrivateDestinations: ['127.0.0.1/32'] } },
      resolveHost: async (host) => {
        // DNS rebinding, in-process: public when the enrollment is created, loopback (not the
        // allowlisted 127.0.0.1) when the device is being decided on.
        if (host !== 'flip.fleet.test') throw new Error(`ENOTFOUND ${host}`);
        flips += 1;
        return [{ address: flips === 1 ? '93.184.215.14' : '127.0.0.2', family: 4 }];
      },
    });
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/decide`;
    const e = await t.call('POST', '/v1/enrollments', { body: { label: 'gated', kind: 'group', attestation: 'x509', decisionWebhookUrl: url } });
    expect(e.status).toBe(201);
    secret = e.body.decisionSecret;
    expect(secret).toMatch(/^whsec_/);
    expect(JSON.stringify((await t.call('GET', `/v1/enrollments/${e.body.enrollment.id}`)).body)).not.toContain(secret);
  });
  afterAll(async () => {
    await t?.stop();
    receiver?.close();
  });

  const lastReason = async (id: string) =>
    (await t.call('GET', `/v1/audit?subject=device:${id}&action=provisioning.x509&limit=100`)).body.entries.filter((e: { outcome: string }) => e.outcome === 'refused').at(-1)?.detail.reason;

  test('allowed: the device provisions; the call is signed and names the device', async () => {
    const d = await manufactured(t, 'kuka-kr16');
    answers.set(d.id, () => ({ status: 200, body: '{"allow":true}' }));
    expect((await provisionX509(t, d)).status).toBe(200);
    expect(seen.find((s) => s.deviceId === d.id)).toMatchObject({ verified: true, model: 'kuka-kr16' });
  });

  test.each([
    ['denied', () => ({ status: 200, body: '{"allow":false}' }), /denied/],
    ['answers 500', () => ({ status: 500, body: '{"allow":true}' }), /HTTP 500/],
    ['answers something else', () => ({ status: 200, body: 'yes' }), /non-JSON/],
    ['is too slow', () => ({ status: 200, body: '{"allow":true}', delayMs: 2500 }), /failed/],
  ])('fail: the webhook %s → refused, nothing issued', async (_label, answer, reason) => {
    const d = await manufactured(t);
    answers.set(d.id, answer);
    const r = await provisionX509(t, d);
    expect(r.body.code).toBe('PROVISIONING_REFUSED');
    expect(await lastReason(d.id)).toMatch(reason);
    const certs = (await t.call('GET', `/v1/certificates?deviceId=${d.id}`)).body.certificates;
    expect(certs.filter((c: { kind: string }) => c.kind === 'operational')).toEqual([]);
  });

  test('fail: a takeover attempt (a second IDevID for an admitted device) is refused before the webhook is asked', async () => {
    const d = await manufactured(t, 'kuka-kr16');
    answers.set(d.id, () => ({ status: 200, body: '{"allow":true}' }));
    expect((await provisionX509(t, d)).status).toBe(200);
    const asked = seen.filter((s) => s.deviceId === d.id).length;
    const idevid = deviceKey();
    const second = await t.call('POST', '/v1/certificates', { body: { deviceId: d.id, csr: idevid.csrPem, kind: 'idevid', validity: '3650d' } });
    expect(second.status).toBe(201);
    expect((await provisionX509(t, { idevid, idevidChainPem: second.body.chainPem })).body.code).toBe('PROVISIONING_REFUSED');
    expect(await lastReason(d.id)).toMatch(/takeover attempt: x509 IDevID .* differs from the one recorded/);
    expect(seen.filter((s) => s.deviceId === d.id)).toHaveLength(asked);
  });

  test('fail: a decision URL that is not https (off loopback) is refused at creation', async () => {
    const r = await t.call('POST', '/v1/enrollments', { body: { label: 'x', kind: 'group', attestation: 'x509', decisionWebhookUrl: 'http://example.com/decide' } });
    expect(r.body.code).toBe('WEBHOOK_URL_REFUSED');
  });

  test('fail: without the allowlist entry, a loopback decision URL is refused at creation', async () => {
    const r = await t.call('POST', '/v1/enrollments', { body: { label: 'x', kind: 'group', attestation: 'x509', decisionWebhookUrl: 'http://127.0.0.2:9/decide' } });
    expect(r.body.code).toBe('WEBHOOK_DESTINATION_REFUSED');
  });

  test('fail: a decision URL whose name rebinds to an internal address is refused at decision time, and nothing is sent', async () => {
    const d = await manufactured(t);
    const e = await t.call('POST', '/v1/enrollments', { body: { label: 'flip', kind: 'individual', deviceId: d.id, attestation: 'x509', decisionWebhookUrl: 'https://flip.fleet.test/decide' } });
    expect(e.status).toBe(201);
    const before = seen.length;
    const r = await provisionX509(t, d);
    expect(r.body.code).toBe('PROVISIONING_REFUSED');
    expect(await lastReason(d.id)).toMatch(/WEBHOOK_DESTINATION_REFUSED.*127\.0\.0\.2.*loopback/);
    expect(seen.length).toBe(before);
  });
});
