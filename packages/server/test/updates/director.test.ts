import { randomBytes } from 'node:crypto';
import { verifyThreshold } from '@fleetkey/crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { deviceKey } from '../support/pki.js';
import { bundleOf, manufactured, provisionX509 } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { deviceGet, initRepo, offlineKeys, publishRelease, type RepoKeys } from './support/repo.js';

/**
 * The Uptane director bound to names (issue 12): per-device documents follow device → current
 * name → desired release; a replacement device converges on the name's release; every change
 * bumps the device's counter; the latest two generations are served; events reach the bus.
 */
describe.each(DIALECTS)('director on %s', (dialect) => {
  let t: TestServer;
  let keys: RepoKeys;
  let now = Date.now();
  const events: { type: string; payload: Record<string, unknown> }[] = [];
  let r1: any;
  let r2: any;

  const device = async (model = 'arm-7') => {
    const m = await manufactured(t, model);
    const op = deviceKey();
    const r = await provisionX509(t, m, op.csrPem);
    if (r.status !== 200) throw new Error(JSON.stringify(r.body));
    return { id: m.id, name: r.body.name as string, cert: r.body.chainPem as string, key: op.keyPem };
  };
  const director = async (d: { cert: string; key: string }) => {
    const ca = bundleOf(t);
    const base = `${t.server.deviceUrl}/device/v1/updates/director/metadata`;
    const ts = JSON.parse((await deviceGet(`${base}/timestamp.json`, { ca, cert: d.cert, key: d.key })).body.toString());
    const v = ts.signed.meta['snapshot.json'].version as number;
    const targets = JSON.parse((await deviceGet(`${base}/${v}.targets.json`, { ca, cert: d.cert, key: d.key })).body.toString());
    return { version: v, targets: targets.signed.targets as Record<string, { custom: Record<string, unknown>; length: number }>, doc: targets };
  };

  beforeAll(async () => {
    t = await startTestServer(dialect, { clock: { now: () => now } });
    t.server.bus.subscribe((e) => events.push({ type: e.type, payload: e.payload }));
    keys = offlineKeys();
    await initRepo(t, keys);
    await t.call('POST', '/v1/enrollments', { body: { label: 'd', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'arm-{id8}' } } });
    r1 = (await publishRelease(t, keys, { model: 'arm-7', version: '1.0.0', content: randomBytes(2000) })).body;
    r2 = (await publishRelease(t, keys, { model: 'arm-7', version: '1.1.0', content: randomBytes(2000) })).body;
  }, 60_000);
  afterAll(async () => t?.stop());

  test('an assignment shows in the device\'s director targets, signed by the director targets key, custom naming device, name, release, counter', async () => {
    const a = await device();
    const before = await director(a);
    expect(before.targets).toEqual({});
    expect((await t.call('POST', '/v1/releases/assign', { body: { name: a.name, releaseId: r1.id } })).status).toBe(200);
    const after = await director(a);
    expect(after.version).toBeGreaterThan(before.version);
    expect(after.targets[r1.targetName]?.custom).toEqual({ deviceId: a.id, name: a.name, releaseId: r1.id, version: '1.0.0', counter: after.version });
    const root = (await t.call('GET', '/v1/updates/director/metadata/1.root.json')).body.signed;
    expect(verifyThreshold(after.doc.signed, after.doc.signatures, { keys: root.keys, keyids: root.roles.targets.keyids, threshold: 1 }).ok).toBe(true);
    // A new assignment bumps the counter. The generation before stays served: a device that read
    // timestamp N just before the re-signing still completes its check with N (TUF 1.0 §5.7.3;
    // a 200-device rollout hit this race); two generations back is gone.
    await t.call('POST', '/v1/releases/assign', { body: { name: a.name, releaseId: r2.id } });
    const third = await director(a);
    expect(third.version).toBe(after.version + 1);
    expect(Object.keys(third.targets)).toEqual([r2.targetName]);
    const get = (file: string) => deviceGet(`${t.server.deviceUrl}/device/v1/updates/director/metadata/${file}`, { ca: bundleOf(t), cert: a.cert, key: a.key });
    const prevTargets = await get(`${after.version}.targets.json`);
    expect(prevTargets.status).toBe(200);
    expect(JSON.parse(prevTargets.body.toString()).signed).toMatchObject({ version: after.version, targets: { [r1.targetName]: { custom: { releaseId: r1.id } } } });
    expect(JSON.parse((await get(`${after.version}.snapshot.json`)).body.toString()).signed.meta).toEqual({ 'targets.json': { version: after.version } });
    expect((await get(`${before.version}.targets.json`)).status).toBe(404);
    expect((await get(`${before.version}.snapshot.json`)).status).toBe(404);
    expect((await get(`${third.version + 1}.targets.json`)).status).toBe(404);
    expect(events.filter((e) => e.type === 'release.assigned').map((e) => e.payload['releaseId'])).toEqual([r1.id, r2.id]);
    expect(events.filter((e) => e.type === 'release.created')).toHaveLength(2);
  });

  test('robot replacement: the new device bound to the name converges on the name\'s release; the old one gets nothing', async () => {
    const a = await device();
    await t.call('POST', '/v1/releases/assign', { body: { name: a.name, releaseId: r1.id } });
    expect(Object.keys((await director(a)).targets)).toEqual([r1.targetName]);
    const b = await device();
    expect((await t.call('POST', `/v1/names/${b.name}/unbind`, { body: { reason: 'spare' } })).status).toBe(200);
    const rep = await t.call('POST', `/v1/names/${a.name}/replace`, { body: { deviceId: b.id, expectedDeviceId: a.id, reason: 'swap' } });
    expect(rep.status).toBe(200);
    const onB = await director(b);
    expect(onB.targets[r1.targetName]?.custom).toMatchObject({ deviceId: b.id, name: a.name, releaseId: r1.id });
    expect((await director(a)).targets).toEqual({});
  });

  test('a release for another model is refused at assignment (RELEASE_MODEL_MISMATCH), nothing changes', async () => {
    const c = await device('other-model');
    const r = await t.call('POST', '/v1/releases/assign', { body: { name: c.name, releaseId: r1.id } });
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('RELEASE_MODEL_MISMATCH');
    expect((await director(c)).targets).toEqual({});
    const unknown = await t.call('POST', '/v1/releases/assign', { body: { name: c.name, releaseId: '00000000-0000-4000-8000-000000000000' } });
    expect(unknown.body.code).toBe('RELEASE_NOT_FOUND');
  });

  test('timestamp and director documents are re-signed before they expire (short expiry, online keys)', async () => {
    const ts1 = (await t.call('GET', '/v1/updates/repo/metadata/timestamp.json')).body.signed;
    const a = await device();
    const d1 = await director(a);
    // Past half the 24 h lifetime: the re-signer and the next check sign new versions.
    now += 13 * 3_600_000;
    expect(await t.server.updates.repository.refreshIfDue({ actor: { kind: 'system', label: 'test' }, requestId: null, remoteAddress: null }, now)).toBe(true);
    await new Promise((r) => setTimeout(r, 1100)); // the served timestamp is cached for 1 s
    const ts2 = (await t.call('GET', '/v1/updates/repo/metadata/timestamp.json')).body.signed;
    expect(ts2.version).toBeGreaterThan(ts1.version);
    expect(Date.parse(ts2.expires)).toBeGreaterThan(Date.parse(ts1.expires));
    const d2 = await director(a);
    expect(d2.version).toBe(d1.version + 1);
  });
});
