import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIGNATURE_HEADER, verifyWebhook } from '@fleetkey/protocol';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { manufactured, provisionX509 } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

describe('the enrollment allow/deny webhook (fail closed)', () => {
  let t: TestServer;
  let receiver: Server;
  let secret = '';
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
    t = await startTestServer('sqlite');
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

  test('fail: a decision URL that is not https (off loopback) is refused at creation', async () => {
    const r = await t.call('POST', '/v1/enrollments', { body: { label: 'x', kind: 'group', attestation: 'x509', decisionWebhookUrl: 'http://example.com/decide' } });
    expect(r.body.code).toBe('WEBHOOK_URL_REFUSED');
  });
});
