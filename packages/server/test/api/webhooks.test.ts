import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EVENT_ID_HEADER, SIGNATURE_HEADER, verifyWebhook } from '@fleetkey/protocol';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

interface Received {
  id: string;
  type: string;
  data: Record<string, unknown>;
}

/**
 * A receiver written the way docs/webhooks.md tells integrators to: verify the HMAC over the raw
 * body, refuse stale timestamps, and refuse a replayed event id.
 */
class Receiver {
  readonly accepted: Received[] = [];
  readonly refused: string[] = [];
  readonly seen = new Set<string>();
  failNext = 0;
  secret = '';
  server: Server;
  constructor() {
    this.server = createHttpServer((req, res) => {
      void this.handle(req).then((status) => res.writeHead(status).end());
    });
  }
  async handle(req: IncomingMessage): Promise<number> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const verdict = verifyWebhook(this.secret, req.headers[SIGNATURE_HEADER] as string | undefined, raw, Math.floor(Date.now() / 1000));
    if (!verdict.ok) {
      this.refused.push(verdict.reason);
      return 401;
    }
    const id = req.headers[EVENT_ID_HEADER] as string;
    if (this.failNext > 0) {
      this.failNext -= 1;
      return 503;
    }
    if (this.seen.has(id)) {
      this.refused.push('replay');
      return 200; // idempotent: acknowledged, not processed twice
    }
    this.seen.add(id);
    this.accepted.push(JSON.parse(raw.toString('utf8')) as Received);
    return 204;
  }
  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks/fleetkey`;
  }
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(DIALECTS)('webhooks on %s', (dialect) => {
  let t: TestServer;
  const rx = new Receiver();
  let url: string;
  beforeAll(async () => {
    url = await rx.listen();
    // The receiver is on loopback, refused by default: allowlisted explicitly (issue 11 item 11).
    t = await startTestServer(dialect, { dispatch: { baseDelayMs: 20, maxDelayMs: 100 }, config: { webhooks: { allowPrivateDestinations: ['127.0.0.1/32'] } } });
  });
  afterAll(async () => {
    await t?.stop();
    rx.server.close();
  });

  test('fail: non-https URLs off loopback and URLs with credentials are refused', async () => {
    for (const bad of ['http://example.com/x', 'https://user:pw@example.com/x', 'ftp://127.0.0.1/x', 'not a url']) {
      const r = await t.call('POST', '/v1/webhooks', { body: { url: bad, events: ['name.rebound'] } });
      expect(r.body.code, bad).toBe('WEBHOOK_URL_REFUSED');
    }
    expect((await t.call('GET', '/v1/webhooks')).body.webhooks).toHaveLength(0);
  });

  test('events are delivered signed, retried after a failure, and status is visible', async () => {
    const created = await t.call('POST', '/v1/webhooks', { body: { url, events: ['name.rebound', 'device.status_changed'] } });
    expect(created.status).toBe(201);
    expect(created.body.secret).toMatch(/^whsec_/);
    rx.secret = created.body.secret;
    rx.failNext = 1; // the first attempt gets a 503: the dispatcher must back off and retry

    const a = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
    const b = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
    await t.call('POST', '/v1/names', { body: { name: 'press-7' } });
    await t.call('POST', '/v1/names/press-7/bind', { body: { deviceId: a } });
    await t.call('POST', '/v1/names/press-7/replace', { body: { deviceId: b, expectedDeviceId: a, revokeOld: true, reason: 'hydraulics' } });

    await until(() => rx.accepted.length >= 2);
    const types = rx.accepted.map((e) => e.type).sort();
    expect(types).toEqual(['device.status_changed', 'name.rebound']);
    const rebound = rx.accepted.find((e) => e.type === 'name.rebound')!;
    expect(rebound.data).toMatchObject({ name: 'press-7', from: a, to: b, oldDeviceRevoked: true, reason: 'hydraulics' });

    const list = await t.call('GET', '/v1/webhooks');
    expect(list.body.webhooks[0].deliveries).toEqual({ pending: 0, delivered: 2, failed: 0 });
    const deliveries = await t.call('GET', `/v1/webhooks/${created.body.webhook.id}/deliveries`);
    const attempts = deliveries.body.deliveries.map((d: { attempts: number }) => d.attempts).sort();
    expect(attempts).toEqual([1, 2]);
    // The secret is shown once: never in listings, never in the audit log.
    expect(JSON.stringify(list.body)).not.toContain(rx.secret);
    expect(JSON.stringify((await t.call('GET', '/v1/audit?limit=1000')).body)).not.toContain(rx.secret);
  });

  test('fail: a receiver with the wrong secret refuses, and the delivery stays pending for retry', async () => {
    const before = rx.accepted.length;
    const good = rx.secret;
    rx.secret = 'whsec_wrong';
    const d = (await t.call('POST', '/v1/devices', { body: {} })).body.id;
    await t.call('POST', `/v1/devices/${d}/suspend`, { body: { reason: 'check' } });
    await until(() => rx.refused.includes('mismatch'));
    expect(rx.accepted.length).toBe(before);
    rx.secret = good;
    await until(() => rx.accepted.length === before + 1);
    expect(rx.accepted.at(-1)?.data).toMatchObject({ deviceId: d, to: 'suspended' });
  });
});

describe('webhook signature verification', () => {
  test('fail: stale, malformed and tampered signatures are refused', async () => {
    const { signWebhook } = await import('@fleetkey/protocol');
    const now = 1_800_000_000;
    const body = '{"a":1}';
    const h = signWebhook('s3cret', now, body);
    expect(verifyWebhook('s3cret', h, body, now)).toEqual({ ok: true, timestamp: now });
    expect(verifyWebhook('s3cret', h, body, now + 301)).toEqual({ ok: false, reason: 'stale' });
    expect(verifyWebhook('s3cret', h, '{"a":2}', now)).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyWebhook('other', h, body, now)).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyWebhook('s3cret', undefined, body, now)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyWebhook('s3cret', h.replace('v1=', 'v2='), body, now)).toEqual({ ok: false, reason: 'malformed' });
  });
});
