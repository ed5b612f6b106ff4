import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { deviceKey } from '../support/pki.js';
import { bundleOf, manufactured, provisionX509 } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

/** The console's devices filters (issue 14): `tag=key=value` on the bound name, `online` per device_presence. */
describe.each(DIALECTS)('device list tag and online filters on %s', (dialect) => {
  let t: TestServer;
  const d: string[] = [];
  const ids = async (query: string): Promise<string[]> => {
    const r = await t.call('GET', `/v1/devices?${query}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.devices.map((x: { id: string }) => x.id);
  };
  const sorted = (xs: string[]) => [...xs].sort();

  beforeAll(async () => {
    t = await startTestServer(dialect);
    // d0..d3 model ur10, d4 model kr16.
    for (let i = 0; i < 5; i += 1) d.push((await t.call('POST', '/v1/devices', { body: { model: i < 4 ? 'ur10' : 'kr16' } })).body.id);
    const names: [string, Record<string, string>, number][] = [
      ['cell-a', { env: 'prod', line: '3' }, 0],
      ['cell-b', { env: 'prod' }, 1],
      ['cell-c', { env: 'prodx' }, 2],
      ['cell-d', { env: 'prod' }, 3], // unbound below: no longer d3's name
      ['cell-e', { env: 'prod', a_b: 'x' }, 4],
    ];
    for (const [name, tags, i] of names) {
      expect((await t.call('POST', '/v1/names', { body: { name, tags } })).status).toBe(201);
      expect((await t.call('POST', `/v1/names/${name}/bind`, { body: { deviceId: d[i] } })).status).toBe(200);
    }
    expect((await t.call('POST', '/v1/names/cell-d/unbind', { body: {} })).status).toBe(200);
    // A tag key differing from a_b only where LIKE's `_` would match any character.
    await t.call('POST', '/v1/names', { body: { name: 'cell-f', tags: { axb: 'x' } } });
    await t.call('POST', '/v1/names/cell-f/bind', { body: { deviceId: d[3] } });
  });
  afterAll(async () => t?.stop());

  test('tag= matches devices whose CURRENTLY bound name carries the tag, exactly', async () => {
    expect(await ids('tag=env=prod')).toEqual(sorted([d[0]!, d[1]!, d[4]!]));
    expect(await ids('tag=env=prodx')).toEqual([d[2]]);
    expect(await ids('tag=line=3')).toEqual([d[0]]);
    expect(await ids('tag=a_b=x')).toEqual([d[4]]);
    expect(await ids('tag=axb=x')).toEqual([d[3]]);
    // LIKE wildcards in the tag match themselves only; a value prefix is not a match.
    expect(await ids('tag=env=pro_')).toEqual([]);
    expect(await ids('tag=env=pro')).toEqual([]);
    expect(await ids('tag=env=')).toEqual([]);
  });

  test('tag= combines with model, status, q and keyset pagination', async () => {
    expect(await ids('tag=env=prod&model=ur10')).toEqual(sorted([d[0]!, d[1]!]));
    expect(await ids('tag=env=prod&model=kr16')).toEqual([d[4]]);
    const all = sorted([d[0]!, d[1]!, d[4]!]);
    const seen: string[] = [];
    let after = '';
    for (let i = 0; i < 4; i += 1) {
      const page = await ids(`tag=env=prod&limit=1${after}`);
      if (page.length === 0) break;
      expect(page).toHaveLength(1);
      seen.push(page[0]!);
      after = `&after=${page[0]}`;
    }
    expect(seen).toEqual(all);
    expect(await ids(`tag=env=prod&limit=2&after=${all[0]}`)).toEqual(all.slice(1));
    expect((await t.call('POST', `/v1/devices/${d[1]}/suspend`, { body: {} })).status).toBe(200);
    expect(await ids('tag=env=prod&status=suspended')).toEqual([d[1]]);
    expect(await ids('tag=env=prodx&status=suspended')).toEqual([]);
    expect(await ids('tag=env=prod&q=cell-b')).toEqual([d[1]]);
    expect(await ids('tag=env=prodx&q=cell-b')).toEqual([]);
  });

  test('fail: a malformed tag or online value is VALIDATION_FAILED (400)', async () => {
    const bad = [
      'tag=envprod', // no '='
      'tag==prod', // empty key
      `tag=${'k'.repeat(65)}=v`, // key too long
      `tag=env=${'v'.repeat(129)}`, // value too long
      'tag=env=prod%25', // `%` wildcard
      'tag=env=prod*',
      'tag=e*=prod',
      'tag=Env=prod', // keys are lower-case
      'tag=env=a%22b', // a quote could break out of the JSON text the filter matches
      'tag=env=a%5Cb', // a backslash, likewise
      'online=maybe',
      'online=1',
    ];
    for (const q of bad) {
      const r = await t.call('GET', `/v1/devices?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.code, q).toBe('VALIDATION_FAILED');
    }
  });

  test('online= reflects a real MQTT connection to the gateway, and combines with tag/model/paging', async () => {
    await t.call('POST', '/v1/enrollments', { body: { label: 'r', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'robot-{id8}' } } });
    const m = await manufactured(t, 'kuka-kr16');
    const op = deviceKey();
    const r = await provisionX509(t, m, op.csrPem);
    expect(r.status).toBe(200);
    expect(await ids('online=true')).toEqual([]);
    expect(await ids('online=false')).toContain(m.id);

    const c = await mqtt.connectAsync(t.server.mqttUrl!, { clientId: m.id, key: op.keyPem, cert: r.body.chainPem, ca: bundleOf(t), protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000 });
    try {
      await poll(async () => (await ids('online=true')).includes(m.id));
      expect(await ids('online=true')).toEqual([m.id]);
      expect(await ids('online=false')).not.toContain(m.id);
      expect(await ids('online=false')).toEqual(expect.arrayContaining(d));
      expect(await ids('online=true&model=kuka-kr16')).toEqual([m.id]);
      expect(await ids('online=true&model=ur10')).toEqual([]);
      expect(await ids('online=true&tag=env=prod')).toEqual([]);
      expect(await ids(`online=true&after=${m.id}`)).toEqual([]);
      expect(await ids(`online=true&q=robot-`)).toEqual([m.id]);
      expect(await ids('online=false&tag=env=prod&model=ur10')).toEqual(sorted([d[0]!, d[1]!]));
      // A viewer may filter too (device:read).
      const viewer = (await t.call('POST', '/v1/tokens', { body: { role: 'viewer' } })).body.secret as string;
      expect((await t.call('GET', '/v1/devices?online=true', { token: viewer })).body.devices.map((x: { id: string }) => x.id)).toEqual([m.id]);
    } finally {
      await c.endAsync();
    }
    await poll(async () => !(await ids('online=true')).includes(m.id));
    expect(await ids('online=false')).toContain(m.id);
  });
});

async function poll(cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
