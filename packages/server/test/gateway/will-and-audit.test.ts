/**
 * Issue 11, defects 2 and 3 through the whole server (real store, audit log and HTTP API) on
 * SQLite and PostgreSQL: a Will is validated at CONNECT like a PUBLISH, data reads survive any
 * stored row, and rate-limit refusals are audited once per device, code and window with a count.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { deviceKey } from '../support/pki.js';
import { bundleOf, manufactured, provisionX509 } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const RATE = 20;
const WINDOW_MS = 1500;
const MAX_PAYLOAD = 1024;

describe.each(DIALECTS)('Will validation, robust data reads, aggregated refusal audit (%s)', (dialect) => {
  let t: TestServer;
  let dev: { id: string; keyPem: string; chainPem: string };
  const opts = (extra: Partial<IClientOptions> = {}): IClientOptions => ({
    clientId: dev.id, key: dev.keyPem, cert: dev.chainPem, ca: bundleOf(t), protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000, ...extra,
  });
  const connect = (extra: Partial<IClientOptions> = {}): Promise<MqttClient> => mqtt.connectAsync(t.server.mqttUrl!, opts(extra), false);

  beforeAll(async () => {
    t = await startTestServer(dialect, {
      config: { gateway: { enabled: true, host: '127.0.0.1', port: 0, maxPayloadBytes: MAX_PAYLOAD, ingestBatch: 64, ingestLingerMs: 2, maxPublishesPerSecond: RATE, refusalAuditWindowMs: WINDOW_MS } },
    });
    await t.call('POST', '/v1/enrollments', { body: { label: 'w', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'will-{id8}' } } });
    const m = await manufactured(t);
    const op = deviceKey();
    const r = await provisionX509(t, m, op.csrPem);
    dev = { id: m.id, keyPem: op.keyPem, chainPem: r.body.chainPem };
  });
  afterAll(async () => t?.stop());

  /** Connects with the Will; if the gateway accepts, the link drops so the Will would be delivered. */
  async function tryWill(version: 4 | 5, payload: string | Buffer): Promise<{ code: number | undefined; accepted: boolean }> {
    const will = { topic: `devices/${dev.id}/diagnostics`, payload: Buffer.from(payload), qos: 1 as const, retain: false };
    try {
      const c = await connect({ protocolVersion: version, will });
      c.stream.destroy(); // not a DISCONNECT: the Will goes out [MQTT-3.1.2-8]
      await new Promise((r) => setTimeout(r, 300));
      c.end(true);
      return { code: undefined, accepted: true };
    } catch (e) {
      return { code: (e as { code?: number }).code, accepted: false };
    }
  }

  async function diagnostics(): Promise<{ status: number; body: { points: { payload: unknown }[] } }> {
    return t.call('GET', `/v1/data/diagnostics?deviceId=${dev.id}`);
  }

  test('fail-v5: a Will whose payload is not JSON is refused at CONNECT with 0x99 and never stored', async () => {
    expect(await tryWill(5, 'not json {')).toEqual({ code: 0x99, accepted: false });
    const d = await diagnostics();
    expect(d.status).toBe(200);
    expect(d.body.points).toEqual([]);
  });

  test('fail-v3.1.1: a Will whose payload is not JSON closes the connection without CONNACK', async () => {
    expect((await tryWill(4, '\u0000\u0001binary')).accepted).toBe(false);
    expect((await diagnostics()).body.points).toEqual([]);
  });

  test('fail-v5: a Will larger than gateway.maxPayloadBytes is refused with 0x99', async () => {
    expect(await tryWill(5, JSON.stringify({ pad: 'x'.repeat(MAX_PAYLOAD) }))).toEqual({ code: 0x99, accepted: false });
  });

  test('a valid JSON Will is accepted and delivered when the device drops', async () => {
    expect((await tryWill(5, JSON.stringify({ lastWords: true }))).accepted).toBe(true);
    const until = Date.now() + 3000;
    let points: { payload: unknown }[] = [];
    while (Date.now() < until && points.length === 0) {
      points = (await diagnostics()).body.points;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(points.map((p) => p.payload)).toEqual([{ lastWords: true }]);
  });

  test('fail: data reads answer 200 for a stored row that is not JSON (rows stored before this check), its payload null', async () => {
    const db = t.server.store.db;
    await db.insertInto('diagnostics').values({ name_id: null, name: null, device_id: dev.id, received_at: Date.now(), payload: 'not json' } as never).execute();
    await db.insertInto('telemetry').values({ device_id: dev.id, name_id: null, received_at: Date.now(), payload: '{truncated' } as never).execute();
    const d = await diagnostics();
    expect(d.status).toBe(200);
    expect(d.body.points.at(-1)).toMatchObject({ payload: null });
    const tel = await t.call('GET', `/v1/data/telemetry?deviceId=${dev.id}`);
    expect(tel.status).toBe(200);
    expect(tel.body.points.at(-1)).toMatchObject({ payload: null });
  });

  test('fail: a device that keeps reconnecting past its rate is audited once per window with a count, not once per refusal', async () => {
    let refusals = 0;
    const t0 = Date.now();
    while (Date.now() - t0 < 800) {
      const c = await connect();
      const cut = new Promise<number | undefined>((r) => c.once('disconnect', (p) => r(p.reasonCode)));
      for (let i = 0; i < 3 * RATE; i++) c.publish(`devices/${dev.id}/telemetry`, '{}', { qos: 0 });
      const code = await Promise.race([cut, new Promise<undefined>((r) => setTimeout(() => r(undefined), 500))]);
      if (code === 0x96) refusals++;
      c.end(true);
    }
    expect(refusals).toBeGreaterThanOrEqual(3);
    const rows = async () => (await t.call('GET', `/v1/audit?action=gateway.refused&subject=device:${dev.id}&limit=1000`)).body.entries.filter((e: { code: string }) => e.code === 'rate_limited');
    const deadline = Date.now() + WINDOW_MS + 3000;
    let found: { detail: { count: number; windowStart: string; windowEnd: string } }[] = [];
    while (Date.now() < deadline && found.length === 0) {
      found = await rows();
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(found).toHaveLength(1);
    expect(found[0]!.detail.count).toBe(refusals);
    expect(Date.parse(found[0]!.detail.windowEnd)).toBeGreaterThan(Date.parse(found[0]!.detail.windowStart));
  });
});
