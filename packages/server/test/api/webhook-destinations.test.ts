import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { checkDestinationAddress } from '@fleetkey/server';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fakeDns } from '../support/fake-dns.js';
import { withTemp } from '../support/pki.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

/*
 * Issue 11 item 11: webhooks and decision webhooks are requests the server makes on an operator's
 * say-so, so a URL must not turn the server into a proxy to the cloud metadata service, the
 * internal network or its own API. No test here sends a packet outside 127.0.0.0/8: refusals are
 * decided before any connect, and names resolve through an in-process resolver, never DNS.
 */

class Receiver {
  readonly requests: IncomingMessage[] = [];
  answer: (req: IncomingMessage) => { status: number; headers?: Record<string, string> } = () => ({ status: 204 });
  readonly server: Server = createHttpServer((req, res) => {
    this.requests.push(req);
    req.resume();
    req.on('end', () => {
      const a = this.answer(req);
      res.writeHead(a.status, a.headers).end();
    });
  });
  port = 0;
  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }
}

async function until(check: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

type Delivery = { status: string; attempts: number; lastError: string | null; lastStatus: number | null };
const deliveriesOf = async (t: TestServer, id: string): Promise<Delivery[]> => (await t.call('GET', `/v1/webhooks/${id}/deliveries`)).body.deliveries;

/** One device.status_changed event: every webhook listening for it gets a delivery. */
async function statusEvent(t: TestServer): Promise<void> {
  const d = (await t.call('POST', '/v1/devices', { body: {} })).body.id as string;
  await t.call('POST', `/v1/devices/${d}/suspend`, { body: { reason: 'webhook test' } });
}

const INTERNAL = [
  'https://169.254.169.254/latest/meta-data/iam/security-credentials/',
  'https://[fd00:ec2::254]/latest/meta-data/',
  'https://100.100.100.200/latest/meta-data/',
  'https://192.0.0.192/',
  'https://10.0.0.1/',
  'https://172.16.5.4/',
  'https://172.31.255.255/',
  'https://192.168.1.1/admin',
  'https://100.64.0.1/',
  'https://127.0.0.1/',
  'https://127.8.9.10:8400/v1/tokens',
  'https://localhost/',
  'https://printer.localhost/',
  'https://localhost./',
  'https://0.0.0.0/',
  'https://[::]/',
  'https://[::1]/',
  'https://[fd00::1]/',
  'https://[fc00::1]/',
  'https://[fe80::1]/',
  'https://[fec0::1]/',
  'https://224.0.0.1/',
  'https://239.255.255.250/',
  'https://[ff02::1]/',
  'https://255.255.255.255/',
  'https://240.0.0.1/',
  'https://192.0.2.1/',
  'https://198.51.100.7/',
  'https://203.0.113.9/',
  'https://198.18.0.1/',
  'https://[2001:db8::1]/',
  'https://[3fff::1]/',
  'https://[100::1]/',
  'https://[2001::1]/',
  // IPv4-mapped, IPv4-compatible, NAT64 and 6to4 forms of internal IPv4 addresses
  'https://[::ffff:127.0.0.1]/',
  'https://[::ffff:169.254.169.254]/',
  'https://[::ffff:a00:1]/',
  'https://[::127.0.0.1]/',
  'https://[::10.0.0.1]/',
  'https://[64:ff9b::a9fe:a9fe]/',
  'https://[64:ff9b::10.0.0.1]/',
  'https://[64:ff9b:1::a00:1]/',
  'https://[2002:7f00:1::]/',
  'https://[2002:a9fe:a9fe::1]/',
  // alternate IPv4 notations the URL parser turns into 127.0.0.1 or 10.0.0.1
  'http://2130706433/',
  'http://0x7f.1/',
  'http://127.1/',
  'http://0177.0.0.1/',
  'http://0x7f000001/',
  'https://167772161/',
  'https://%31%32%37.0.0.1/',
];

describe('webhook destinations: refused at creation (no connection is made)', () => {
  let t: TestServer;
  const dns = fakeDns({
    'internal.fleet.test': [['10.1.2.3']],
    'metadata.fleet.test': [['169.254.169.254']],
    'mixed.fleet.test': [['93.184.215.14', '10.0.0.7']],
    'v6-internal.fleet.test': [['fd12:3456::1']],
    'mapped.fleet.test': [['::ffff:127.0.0.1']],
    'public.fleet.test': [['93.184.215.14']],
  });
  beforeAll(async () => {
    t = await startTestServer('sqlite', { resolveHost: dns, config: { webhooks: { allowInsecureHttp: true } } });
  });
  afterAll(async () => t?.stop());

  test.each(INTERNAL)('fail: a webhook to %s is refused', async (url) => {
    const r = await t.call('POST', '/v1/webhooks', { body: { url, events: ['name.rebound'] } });
    expect(r.status).toBe(400);
    expect(['WEBHOOK_DESTINATION_REFUSED', 'WEBHOOK_URL_REFUSED']).toContain(r.body.code);
    expect((await t.call('GET', '/v1/webhooks')).body.webhooks).toHaveLength(0);
  });

  test.each(['internal', 'metadata', 'mixed', 'v6-internal', 'mapped'])('fail: a name that resolves to an internal address (%s) is refused', async (name) => {
    const r = await t.call('POST', '/v1/webhooks', { body: { url: `https://${name}.fleet.test/hook`, events: ['name.rebound'] } });
    expect(r.body.code).toBe('WEBHOOK_DESTINATION_REFUSED');
  });

  test('fail: a name that does not resolve is refused', async () => {
    const r = await t.call('POST', '/v1/webhooks', { body: { url: 'https://nowhere.fleet.test/hook', events: ['name.rebound'] } });
    expect(r.body.code).toBe('WEBHOOK_URL_REFUSED');
  });

  test("fail: the server's own operator API is refused", async () => {
    const r = await t.call('POST', '/v1/webhooks', { body: { url: `${t.url}/v1/tokens`, events: ['name.rebound'] } });
    expect(r.body.code).toBe('WEBHOOK_DESTINATION_REFUSED');
  });

  test('fail: a decision webhook to the metadata service or a private address is refused at creation', async () => {
    for (const url of ['https://169.254.169.254/decide', 'https://[fd00::1]/decide', 'https://internal.fleet.test/decide', 'http://0x7f.1/decide']) {
      const r = await t.call('POST', '/v1/enrollments', { body: { label: 'x', kind: 'group', attestation: 'x509', decisionWebhookUrl: url } });
      expect(['WEBHOOK_DESTINATION_REFUSED', 'WEBHOOK_URL_REFUSED'], url).toContain(r.body.code);
    }
    expect((await t.call('GET', '/v1/enrollments')).body.enrollments).toHaveLength(0);
  });

  test('a public destination is accepted (by name and by address)', async () => {
    for (const url of ['https://public.fleet.test/hook', 'https://93.184.215.14/hook', 'https://[2606:4700:4700::1111]/hook']) {
      const r = await t.call('POST', '/v1/webhooks', { body: { url, events: ['name.rebound'] } });
      expect(r.status, url).toBe(201);
      await t.call('DELETE', `/v1/webhooks/${r.body.webhook.id}`);
    }
  });
});

describe('the address classifier', () => {
  const none = { allow: [] as string[] };
  test.each(['8.8.8.8', '1.1.1.1', '93.184.215.14', '2606:4700:4700::1111', '2a00:1450:4001:80b::200e', '64:ff9b::808:808', '::ffff:8.8.8.8'])(
    '%s is a public address',
    (ip) => expect(checkDestinationAddress(ip, none)).toBeNull(),
  );
  test.each(['169.254.169.254', '10.255.255.255', '100.127.255.255', '::ffff:7f00:1', '64:ff9b::a00:1', 'fd00::1', '2002:c0a8:101::1', '::', '0.1.2.3'])(
    'fail: %s is refused with a reason',
    (ip) => expect(checkDestinationAddress(ip, none)).toMatch(/./),
  );
  test('the allowlist admits exactly its ranges', () => {
    const policy = { allow: ['127.0.0.1/32', 'fd00:1::/32'] };
    expect(checkDestinationAddress('127.0.0.1', policy)).toBeNull();
    expect(checkDestinationAddress('::ffff:127.0.0.1', policy)).toBeNull();
    expect(checkDestinationAddress('127.0.0.2', policy)).toMatch(/loopback/);
    expect(checkDestinationAddress('fd00:1::5', policy)).toBeNull();
    expect(checkDestinationAddress('fd00:2::5', policy)).toMatch(/unique-local/);
  });
});

describe('webhook destinations: checked again on the address actually connected', () => {
  let t: TestServer;
  const rx = new Receiver();
  const other = new Receiver();
  let dns: ReturnType<typeof fakeDns>;
  beforeAll(async () => {
    await rx.listen();
    await other.listen();
    dns = fakeDns({
      // pinned: the first delivery-time answer is the receiver; any second lookup would go elsewhere
      'pinned.fleet.test': [['127.0.0.1'], ['127.0.0.1'], ['10.9.9.9']],
      'redirect.fleet.test': [['127.0.0.1']],
      'tls.fleet.test': [['127.0.0.1']],
    });
    t = await startTestServer('sqlite', {
      resolveHost: dns,
      dispatch: { baseDelayMs: 20, maxDelayMs: 50 },
      config: { webhooks: { allowInsecureHttp: true, allowPrivateDestinations: ['127.0.0.1/32'] } },
    });
  });
  afterAll(async () => {
    await t?.stop();
    rx.server.close();
    other.server.close();
  });

  const deliveries = (id: string) => deliveriesOf(t, id);
  const fire = () => statusEvent(t);

  test('the delivery connects to the address it validated (one lookup), with Host naming the host', async () => {
    const created = await t.call('POST', '/v1/webhooks', { body: { url: `http://pinned.fleet.test:${rx.port}/hook`, events: ['device.status_changed'] } });
    expect(created.status).toBe(201);
    const lookups = () => dns.calls.filter((h) => h === 'pinned.fleet.test').length;
    expect(lookups()).toBe(1);
    const before = rx.requests.length;
    await fire();
    await until(() => rx.requests.length > before);
    await until(async () => (await deliveries(created.body.webhook.id))[0]?.status === 'delivered');
    expect(rx.requests.at(-1)?.headers.host).toBe(`pinned.fleet.test:${rx.port}`);
    expect(lookups()).toBe(2); // creation + delivery: the socket used the answer, it did not look up again
    await t.call('DELETE', `/v1/webhooks/${created.body.webhook.id}`);
  });

  test('over https the pinned connection sends the hostname as SNI and verifies the certificate against it', async () => {
    // A self-signed certificate for the very name: no trust store holds it, so a client that
    // verifies (as it must) stops after the handshake, having sent its SNI.
    const { key, cert } = withTemp((dir) => {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=tls.fleet.test', '-addext', 'subjectAltName=DNS:tls.fleet.test', '-days', '1', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem')], { stdio: 'ignore' });
      return { key: readFileSync(join(dir, 'k.pem'), 'utf8'), cert: readFileSync(join(dir, 'c.pem'), 'utf8') };
    });
    const sni: string[] = [];
    let requests = 0;
    const tls = createHttpsServer(
      { key, cert, SNICallback: (name, cb) => { sni.push(name); cb(null, createSecureContext({ key, cert })); } },
      (_req, res) => {
        requests += 1;
        res.writeHead(204).end();
      },
    );
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
    try {
      const port = (tls.address() as AddressInfo).port;
      const created = await t.call('POST', '/v1/webhooks', { body: { url: `https://tls.fleet.test:${port}/hook`, events: ['device.status_changed'] } });
      expect(created.status).toBe(201);
      await fire();
      await until(async () => ((await deliveries(created.body.webhook.id))[0]?.lastError ?? null) !== null);
      expect(sni).toContain('tls.fleet.test');
      expect((await deliveries(created.body.webhook.id))[0]?.lastError).toMatch(/certificate|issuer/i);
      expect(requests).toBe(0);
      await t.call('DELETE', `/v1/webhooks/${created.body.webhook.id}`);
    } finally {
      tls.close();
    }
  });

  test('fail: a redirect is never followed', async () => {
    rx.answer = () => ({ status: 307, headers: { location: `http://127.0.0.1:${other.port}/stolen` } });
    const created = await t.call('POST', '/v1/webhooks', { body: { url: `http://redirect.fleet.test:${rx.port}/hook`, events: ['device.status_changed'] } });
    await fire();
    await until(async () => (await deliveries(created.body.webhook.id))[0]?.lastStatus === 307);
    expect(other.requests).toHaveLength(0);
    expect((await deliveries(created.body.webhook.id))[0]?.status).toBe('pending');
    rx.answer = () => ({ status: 204 });
    await t.call('DELETE', `/v1/webhooks/${created.body.webhook.id}`);
  });

  test("fail: the server's own API stays refused even with loopback allowlisted", async () => {
    const r = await t.call('POST', '/v1/webhooks', { body: { url: `${t.url}/v1/tokens`, events: ['name.rebound'] } });
    expect(r.body.code).toBe('WEBHOOK_DESTINATION_REFUSED');
  });

  test('fail: an allowlist entry that is not a CIDR range stops the start', async () => {
    const err = await startTestServer('sqlite', { config: { webhooks: { allowPrivateDestinations: ['localhost'] } } }).then(
      async (s) => {
        await s.stop();
        return null;
      },
      (e: unknown) => e as { code?: string },
    );
    expect(err?.code).toBe('CONFIG_INVALID');
  });
});

describe('webhook destinations: DNS rebinding', () => {
  let t: TestServer;
  const rx = new Receiver();
  beforeAll(async () => {
    await rx.listen();
    t = await startTestServer('sqlite', {
      // public while the webhook is created, loopback (not allowlisted here) when it is delivered
      resolveHost: fakeDns({ 'rebind.fleet.test': [['93.184.215.14'], ['127.0.0.1']] }),
      dispatch: { baseDelayMs: 20, maxDelayMs: 50 },
      config: { webhooks: { allowInsecureHttp: true } },
    });
  });
  afterAll(async () => {
    await t?.stop();
    rx.server.close();
  });
  const deliveries = (id: string) => deliveriesOf(t, id);
  const fire = () => statusEvent(t);

  test('fail: DNS rebinding (public at creation, loopback at delivery) never reaches the loopback receiver', async () => {
    const created = await t.call('POST', '/v1/webhooks', { body: { url: `http://rebind.fleet.test:${rx.port}/hook`, events: ['device.status_changed'] } });
    expect(created.status).toBe(201);
    const before = rx.requests.length;
    await fire();
    await until(async () => (await deliveries(created.body.webhook.id)).some((d) => d.attempts >= 2));
    const [d] = await deliveries(created.body.webhook.id);
    expect(d?.status).toBe('pending');
    expect(d?.lastStatus).toBeNull();
    expect(d?.lastError).toMatch(/WEBHOOK_DESTINATION_REFUSED.*127\.0\.0\.1.*loopback/);
    expect(rx.requests.length).toBe(before);
    await t.call('DELETE', `/v1/webhooks/${created.body.webhook.id}`);
  });
});
