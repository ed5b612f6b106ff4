/**
 * Issue 14, operations: GET /metrics (Prometheus text) behind a metrics:read token or an allowed
 * network, its values moved by real traffic (provisioning, mTLS CONNECTs, QoS 1 PUBLISHes, a
 * refused CONNECT, a revocation cut, a failing webhook), /readyz, and the gateway's structured
 * log lines (connect, refusal with reason, disconnect) with no credential in them.
 */
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { deviceKey } from '../support/pki.js';
import { manufactured, provisionSymmetric, provisionX509 } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

/** `name{labels} value` lines of the exposition format → value, keyed by `name{labels}`. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

const value = (m: Map<string, number>, key: string): number => m.get(key) ?? 0;

async function scrape(t: TestServer, token: string | null): Promise<{ status: number; text: string; type: string | null }> {
  const res = await fetch(`${t.url}/metrics`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') };
}

describe.each(DIALECTS)('metrics, readiness and gateway logs (%s)', (dialect) => {
  let t: TestServer;
  let monitoring: string;
  const lines: string[] = [];
  beforeAll(async () => {
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    t = await startTestServer(dialect, {
      logger: pino({ level: 'info' }, stream),
      dispatch: { baseDelayMs: 20, maxDelayMs: 50 },
      config: { webhooks: { allowPrivateDestinations: ['127.0.0.1/32'], allowInsecureHttp: true } },
    });
    monitoring = (await t.call('POST', '/v1/tokens', { body: { role: 'monitoring', name: 'prometheus' } })).body.secret as string;
    await t.call('POST', '/v1/enrollments', { body: { label: 'robots', kind: 'group', attestation: 'x509' } });
  });
  afterAll(async () => t?.stop());

  test('fail: no token, a malformed or unknown token, a viewer or manufacturing token, and a query are refused', async () => {
    expect((await scrape(t, null)).status).toBe(401);
    expect(JSON.parse((await scrape(t, null)).text).code).toBe('UNAUTHENTICATED');
    expect((await fetch(`${t.url}/metrics`, { headers: { authorization: 'Basic eDp5' } })).status).toBe(401);
    expect((await scrape(t, `fkt_${'A'.repeat(43)}`)).status).toBe(401);
    for (const role of ['viewer', 'manufacturing']) {
      const token = (await t.call('POST', '/v1/tokens', { body: { role } })).body.secret as string;
      const r = await scrape(t, token);
      expect(r.status, role).toBe(403);
      expect(JSON.parse(r.text).code).toBe('FORBIDDEN');
    }
    const q = await fetch(`${t.url}/metrics?name[]=x`, { headers: { authorization: `Bearer ${monitoring}` } });
    expect(q.status).toBe(400);
    // The monitoring role reads metrics and nothing else.
    expect((await t.call('GET', '/v1/devices', { token: monitoring })).status).toBe(403);
  });

  test('a monitoring token scrapes Prometheus text whose values move with real traffic', async () => {
    const before = await scrape(t, monitoring);
    expect(before.status).toBe(200);
    expect(before.type).toContain('text/plain');
    const b = parse(before.text);

    // A webhook whose receiver is down: its deliveries fail and wait for a retry.
    await t.call('POST', '/v1/webhooks', { body: { url: 'http://127.0.0.1:9/down', events: ['device.status_changed'] } });

    // Provisioning: one issued (x509), one refused (a symmetric token for a device with no key).
    const m = await manufactured(t);
    const op = deviceKey();
    const p = await provisionX509(t, m, op.csrPem);
    expect(p.status, JSON.stringify(p.body)).toBe(200);
    expect((await provisionSymmetric(t, m.id, Buffer.alloc(32, 7))).status).toBe(403);

    // A refused CONNECT: a valid certificate presenting another client id.
    const options = { key: op.keyPem, cert: p.body.chainPem as string, ca: p.body.caBundlePem as string, reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 5 as const };
    await expect(mqtt.connectAsync(t.server.mqttUrl!, { ...options, clientId: 'someone-else' })).rejects.toThrow();
    // Accepted, 20 QoS 1 PUBLISHes (each acknowledged after its commit).
    const client = await mqtt.connectAsync(t.server.mqttUrl!, { ...options, clientId: m.id });
    for (let i = 0; i < 20; i++) await client.publishAsync(`devices/${m.id}/telemetry`, JSON.stringify({ i }), { qos: 1 });
    // Revoked: the gateway cuts the session.
    const closed = new Promise<void>((resolve) => client.on('close', () => resolve()));
    expect((await t.call('POST', `/v1/devices/${m.id}/revoke`, { body: { reason: 'stolen' } })).status).toBe(200);
    await closed;

    let a = new Map<string, number>();
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = await scrape(t, monitoring);
      expect(r.status).toBe(200);
      a = parse(r.text);
      if ((value(a, 'fleetkey_revocation_cut_seconds_count') >= 1 && value(a, 'fleetkey_webhook_deliveries{status="retrying"}') >= 1) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const moved = (key: string, by: number) => expect(value(a, key) - value(b, key), key).toBeGreaterThanOrEqual(by);
    moved('fleetkey_gateway_connects_accepted_total', 1);
    moved('fleetkey_gateway_refusals_total{reason="identifier_rejected",stage="connect"}', 1);
    moved('fleetkey_messages_received_total', 20);
    moved('fleetkey_messages_stored_total', 20);
    moved('fleetkey_ingest_batch_seconds_count', 1);
    moved('fleetkey_revocation_cut_seconds_count', 1);
    moved('fleetkey_provisioning_total{method="x509",outcome="issued"}', 1);
    moved('fleetkey_provisioning_total{method="symmetric",outcome="refused"}', 1);
    moved('fleetkey_provisioning_seconds_count{method="x509"}', 1);
    moved('fleetkey_webhook_deliveries{status="retrying"}', 1);
    expect(value(a, 'fleetkey_gateway_connections')).toBe(0);
    expect(value(a, `fleetkey_db_pool_connections{state="total",dialect="${dialect}"}`)).toBeGreaterThanOrEqual(1);
    // A revocation cut well under a second (sum of one observation here, at most a few).
    expect(value(a, 'fleetkey_revocation_cut_seconds_sum') / value(a, 'fleetkey_revocation_cut_seconds_count')).toBeLessThan(1);
    // No identity in the metrics: no device id, no token.
    expect(JSON.stringify([...a.keys()])).not.toContain(m.id);

    // The gateway logged the connect, the refusal with its reason and the disconnect, as pino JSON.
    const gw = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['component'] === 'gateway');
    expect(gw.find((l) => l['event'] === 'connect' && l['deviceId'] === m.id)).toBeDefined();
    expect(gw.find((l) => l['event'] === 'refusal' && l['reason'] === 'identifier_rejected')).toBeDefined();
    expect(gw.find((l) => l['event'] === 'disconnect' && l['deviceId'] === m.id)).toBeDefined();
  });

  test('fail: credentials sent to the gateway never reach its log lines', async () => {
    const password = `fkt_${'s'.repeat(43)}`;
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNlY3JldA';
    const sas = 'sr=mqtt%2Fx&se=9999999999&sig=c2VjcmV0LXNpZ25hdHVyZS12YWx1ZQ';
    for (const [clientId, pw] of [
      [`id-${password}`, password],
      [`id-${jwt}`, jwt],
      [`id-${sas}`, sas],
    ] as const) {
      await expect(mqtt.connectAsync(t.server.mqttUrl!, { clientId, username: clientId, password: pw, rejectUnauthorized: false, reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 5 })).rejects.toThrow();
    }
    const log = lines.join('');
    expect(log).toContain('"event":"refusal"');
    for (const secret of [password, password.slice(4), jwt, jwt.split('.')[2]!, 'c2VjcmV0LXNpZ25hdHVyZS12YWx1ZQ', t.adminToken, monitoring]) expect(log).not.toContain(secret);
  });

  test('/readyz is 200 with every check ok, then 503 NOT_READY naming the listener that went down; /healthz stays 200', async () => {
    const ok = await t.call('GET', '/readyz', { token: null });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ status: 'ready', checks: { store: 'ok', operatorListener: 'ok', deviceListener: 'ok', gateway: 'ok' } });
    expect((await t.call('GET', '/readyz?x=1', { token: null })).status).toBe(400);
    await t.server.gateway!.close();
    const down = await t.call('GET', '/readyz', { token: null });
    expect(down.status).toBe(503);
    expect(down.body.code).toBe('NOT_READY');
    expect(down.body.checks).toEqual({ store: 'ok', operatorListener: 'ok', deviceListener: 'ok', gateway: 'not listening' });
    expect((await t.call('GET', '/healthz', { token: null })).status).toBe(200);
  });
});

describe('metrics from an allowed network', () => {
  let t: TestServer;
  afterAll(async () => t?.stop());

  test('a scraper in metrics.allowNetworks needs no token; a token it sends is still checked; another network is refused', async () => {
    t = await startTestServer('sqlite', { config: { metrics: { allowNetworks: ['127.0.0.1/32'] } } });
    expect((await scrape(t, null)).status).toBe(200);
    expect((await scrape(t, `fkt_${'B'.repeat(43)}`)).status).toBe(401);
    await t.stop();
    t = await startTestServer('sqlite', { config: { metrics: { allowNetworks: ['10.0.0.0/8'] } } });
    expect((await scrape(t, null)).status).toBe(401);
  });

  test('fail: a malformed network range stops the server at start', async () => {
    await expect(startTestServer('sqlite', { config: { metrics: { allowNetworks: ['10.0.0.0/33'] } } })).rejects.toMatchObject({ code: 'CONFIG_INVALID', detail: expect.stringMatching(/^metrics\.allowNetworks: .* is not a CIDR range/) });
  });
});
