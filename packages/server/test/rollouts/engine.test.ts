/**
 * The rollout engine on a real server (operator API, store, ticker, event outbox), on SQLite and
 * PostgreSQL. Device reports enter as the gateway hands them on: the bus event
 * `device.update_reported` after its store commit (the MQTT path is in simulate-rollout.test.ts).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Kysely } from 'kysely';
import { DIALECTS } from '../support/databases.js';
import { createNames, insertRelease, startRestartable, waitFor, type RestartableServer } from './rollout-support.js';

describe.each(DIALECTS)('rollout engine on %s', (dialect) => {
  let t: RestartableServer;
  let release1: string;
  let release2: string;
  const tokens: Record<string, string> = {};
  const db = () => t.server.store.db as unknown as Kysely<any>;

  beforeAll(async () => {
    t = await startRestartable(dialect);
    release1 = await insertRelease(db(), '1.0.0');
    release2 = await insertRelease(db(), '2.0.0');
    for (const role of ['viewer', 'operator']) tokens[role] = (await t.call('POST', '/v1/tokens', { body: { role, name: `${role} bot` } })).body.secret;
  }, 60_000);
  afterAll(async () => t?.stop());

  const report = (nameId: string, releaseId: string, phase: 'installed' | 'failed', deviceId = randomUUID(), code = 'UPDATE_HASH_MISMATCH') =>
    t.server.bus.publish({
      id: randomUUID(),
      type: 'device.update_reported' as never,
      subject: `device:${deviceId}`,
      payload: { deviceId, nameId, releaseId, version: '2.0.0', phase, ...(phase === 'failed' ? { code } : {}) },
      createdAt: Date.now(),
      deliveries: 0,
    });
  const show = async (id: string) => (await t.call('GET', `/v1/rollouts/${id}`)).body;
  const targets = async (id: string, status?: string) => (await t.call('GET', `/v1/rollouts/${id}/targets${status === undefined ? '' : `?status=${status}`}`)).body.targets as any[];
  const create = (body: Record<string, unknown>, token?: string) =>
    t.call('POST', '/v1/rollouts', { body: { release: release2, waves: [20, 100], maxPerMinute: 10_000, abortFailureRatio: 0.1, minExecuted: 20, timeout: '30m', ...body }, ...(token === undefined ? {} : { token }) });
  // In the order they were written (PostgreSQL returns an unordered select in any order).
  const events = async (type: string, rolloutId: string) =>
    (await db().selectFrom('events').select(['type', 'payload']).where('type', '=', type).where('subject', '=', `rollout:${rolloutId}`).orderBy('created_at').orderBy('id').execute()).map((e: any) => JSON.parse(e.payload));

  test('fail: a viewer token can neither create nor abort a rollout; nothing changes, refusals audited', async () => {
    await createNames(t.call, 'auth-line', 3);
    const before = await db().selectFrom('rollouts').select('id').execute();
    const r = await create({ select: 'name:auth-line-*' }, tokens['viewer']);
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('FORBIDDEN');
    expect(await db().selectFrom('rollouts').select('id').execute()).toEqual(before);
    const ok = await create({ select: 'name:auth-line-*', maxPerMinute: 1 }, tokens['operator']);
    expect(ok.status).toBe(201);
    for (const action of ['abort', 'pause', 'rollback']) {
      const a = await t.call('POST', `/v1/rollouts/${ok.body.id}/${action}`, { token: tokens['viewer'], body: { reason: 'x' } });
      expect(a.status).toBe(403);
    }
    expect((await show(ok.body.id)).status).toBe('running');
    // The viewer reads.
    expect((await t.call('GET', `/v1/rollouts/${ok.body.id}`, { token: tokens['viewer'] })).status).toBe(200);
    const refused = await db().selectFrom('audit_log').select(['action', 'outcome', 'code']).where('code', '=', 'FORBIDDEN').execute();
    expect(refused.length).toBeGreaterThan(0);
    expect((await t.call('POST', `/v1/rollouts/${ok.body.id}/abort`, { token: tokens['operator'], body: null })).body.status).toBe('aborted');
  });

  test('fail: malformed or unsatisfiable rollouts are refused with stable codes and create nothing', async () => {
    await createNames(t.call, 'bad-line', 2, { site: 'plant-9' });
    const before = (await db().selectFrom('rollouts').select('id').execute()).length;
    const cases: [Record<string, unknown>, number, string][] = [
      [{ select: 'name:bad-line-*', unknown: 1 }, 400, 'VALIDATION_FAILED'],
      [{ select: 'device:x' }, 400, 'ROLLOUT_SELECTOR_INVALID'],
      [{ select: 'name:bad-line-*', waves: [50, 20, 100] }, 400, 'ROLLOUT_WAVES_INVALID'],
      [{ select: 'name:bad-line-*', waves: [10, 50] }, 400, 'ROLLOUT_WAVES_INVALID'],
      [{ select: 'name:bad-line-*', abortFailureRatio: 1.5 }, 400, 'VALIDATION_FAILED'],
      [{ select: 'name:bad-line-*', timeout: '0s' }, 400, 'VALIDATION_FAILED'],
      [{ select: 'name:bad-line-*', healthRule: 'process.exit() < 1' }, 400, 'ROLLOUT_HEALTH_RULE_INVALID'],
      [{ select: 'name:bad-line-*', release: 'no-such-release' }, 404, 'ROLLOUT_RELEASE_NOT_FOUND'],
      [{ select: 'name:nothing-matches-*' }, 422, 'ROLLOUT_SELECTION_EMPTY'],
      [{ select: 'tag:site=plant-0' }, 422, 'ROLLOUT_SELECTION_EMPTY'],
    ];
    for (const [body, status, code] of cases) {
      const r = await create(body);
      expect([r.status, r.body.code], JSON.stringify(body)).toEqual([status, code]);
    }
    // A name already in an active rollout cannot be in a second one.
    const first = await create({ select: 'tag:site=plant-9', maxPerMinute: 1 });
    expect(first.status).toBe(201);
    const second = await create({ select: 'name:bad-line-00*' });
    expect([second.status, second.body.code]).toEqual([409, 'ROLLOUT_NAME_BUSY']);
    expect((await db().selectFrom('rollouts').select('id').execute()).length).toBe(before + 1);
    // State machine: a rollout that is not paused cannot resume; an unknown one is not found.
    expect((await t.call('POST', `/v1/rollouts/${first.body.id}/resume`, { body: null })).body.code).toBe('ROLLOUT_STATE_INVALID');
    expect((await t.call('POST', `/v1/rollouts/${randomUUID()}/pause`, { body: null })).body.code).toBe('ROLLOUT_NOT_FOUND');
    await t.call('POST', `/v1/rollouts/${first.body.id}/abort`, { body: null });
  });

  test('a fetch failure (UPDATE_FETCH_FAILED) is not an outcome: the name stays assigned and its later install counts; a verification failure is final', async () => {
    await createNames(t.call, 'fetch-line', 2);
    const r = await create({ select: 'name:fetch-line-*', waves: [100], minExecuted: 100 });
    expect(r.status).toBe(201);
    const assigned = await waitFor('assigned', async () => {
      const a = await targets(r.body.id, 'assigned');
      return a.length === 2 ? a : undefined;
    });
    const [flaky, bad] = [assigned[0], assigned[1]];
    report(flaky.nameId, release2, 'failed', randomUUID(), 'UPDATE_FETCH_FAILED');
    report(bad.nameId, release2, 'failed', randomUUID(), 'UPDATE_HASH_MISMATCH');
    await waitFor('the verification failure recorded', async () => ((await targets(r.body.id, 'failed')).length === 1 ? true : undefined));
    expect((await targets(r.body.id, 'failed')).map((x) => [x.nameId, x.code])).toEqual([[bad.nameId, 'UPDATE_HASH_MISMATCH']]);
    expect((await targets(r.body.id, 'assigned')).map((x) => x.nameId)).toEqual([flaky.nameId]);
    report(flaky.nameId, release2, 'installed');
    await waitFor('the retried install counted', async () => ((await targets(r.body.id, 'installed')).some((x) => x.nameId === flaky.nameId) ? true : undefined));
    await t.call('POST', `/v1/rollouts/${r.body.id}/abort`, { body: null });
  });

  test('fail: a rollout over 200 names aborts by itself in its first wave when failures pass the threshold; the second wave is never assigned', async () => {
    await createNames(t.call, 'abort-line', 200, { site: 'plant-1' });
    const r = await create({ select: 'name:abort-line-*' });
    expect(r.status).toBe(201);
    expect(r.body.waveSizes).toEqual([40, 160]);
    const assigned = await waitFor('wave 1 assigned', async () => {
      const a = await targets(r.body.id, 'assigned');
      return a.length === 40 ? a : undefined;
    });
    expect(new Set(assigned.map((a) => a.wave))).toEqual(new Set([0]));
    // 25 installed, 5 failed: 5 of 30 = 0.167 > 0.1 over min-executed 20.
    for (const [i, a] of assigned.slice(0, 30).entries()) report(a.nameId, release2, i % 6 === 5 ? 'failed' : 'installed');
    const done = await waitFor('aborted', async () => {
      const s = await show(r.body.id);
      return s.status === 'aborted' ? s : undefined;
    });
    expect(done.abortReason).toMatch(/failure ratio/);
    // The rule may trip before the last of the 30 reports is recorded (3 failures of 20 are already
    // above 0.1); reports of names already assigned are still recorded after the abort.
    const settled = await waitFor('all 30 outcomes', async () => {
      const s = await show(r.body.id);
      return s.counts.installed + s.counts.failed === 30 ? s : undefined;
    });
    expect(settled.counts).toMatchObject({ total: 200, installed: 25, failed: 5, assigned: 10, pending: 0, cancelled: 160 });
    expect(done.currentWave).toBe(0);
    // Nothing of the second wave was ever assigned: no desired release for any of its names.
    const wave2 = (await targets(r.body.id)).filter((x) => x.wave === 1);
    expect(wave2.every((x) => x.assignedAt === null)).toBe(true);
    const desired = await db().selectFrom('desired_releases').select('name_id').where('rollout_id', '=', r.body.id).execute();
    expect(desired.length).toBe(40);
    // Events (to webhooks through the outbox): created, wave 0 started, outcomes, aborted by the rule.
    expect((await events('rollout.created', r.body.id)).length).toBe(1);
    expect((await events('rollout.wave_started', r.body.id)).map((e) => e.wave)).toEqual([0]);
    expect((await events('rollout.device_outcome', r.body.id)).length).toBe(30);
    expect((await events('rollout.aborted', r.body.id))[0]).toMatchObject({ by: 'rule', cancelled: 160 });
    // A late report changes nothing after the abort's decision except the outcome it records.
    await new Promise((res) => setTimeout(res, 300));
    expect((await show(r.body.id)).status).toBe('aborted');
  });

  test('a rollout completes wave by wave, and rollback gives every name its previous release back', async () => {
    await createNames(t.call, 'ok-line', 50);
    // The names ran release 1 before (an earlier rollout that completed).
    const pre = await create({ release: release1, select: 'name:ok-line-*', waves: [100] });
    const preTargets = await waitFor('pre assigned', async () => {
      const a = await targets(pre.body.id, 'assigned');
      return a.length === 50 ? a : undefined;
    });
    for (const a of preTargets) report(a.nameId, release1, 'installed');
    await waitFor('pre completed', async () => (await show(pre.body.id)).status === 'completed');

    const r = await create({ select: 'name:ok-line-*', waves: [10, 50, 100] });
    const seen = new Set<string>();
    await waitFor('completed', async () => {
      for (const a of await targets(r.body.id, 'assigned')) {
        if (seen.has(a.nameId)) continue;
        seen.add(a.nameId);
        report(a.nameId, release2, 'installed');
      }
      return (await show(r.body.id)).status === 'completed';
    });
    const s = await show(r.body.id);
    expect(s.counts).toMatchObject({ total: 50, installed: 50 });
    expect((await events('rollout.wave_started', r.body.id)).map((e) => e.wave)).toEqual([0, 1, 2]);
    expect((await events('rollout.completed', r.body.id)).length).toBe(1);
    expect((await targets(r.body.id)).every((x) => x.previousReleaseId === release1)).toBe(true);

    const rb = await t.call('POST', `/v1/rollouts/${r.body.id}/rollback`, { body: { reason: 'field reports' } });
    expect(rb.body.status).toBe('rolled_back');
    const desired = await db().selectFrom('desired_releases').select(['release_id']).where('name_id', 'in', preTargets.map((x) => x.nameId)).execute();
    expect(desired.length).toBe(50);
    expect(desired.every((d: any) => d.release_id === release1)).toBe(true);
    expect((await events('rollout.rolled_back', r.body.id))[0]).toMatchObject({ restored: 50, skipped: 0 });
  });

  test('pause stops new assignments and resume continues; the state survives a server restart', async () => {
    await createNames(t.call, 'pace-line', 30);
    // 5 a minute: the first 5 go at once, the others wait for the rate window.
    const r = await create({ select: 'name:pace-line-*', waves: [100], maxPerMinute: 5 });
    await waitFor('first batch', async () => (await targets(r.body.id, 'assigned')).length === 5);
    expect((await t.call('POST', `/v1/rollouts/${r.body.id}/pause`, { body: { reason: 'night shift' } })).body.status).toBe('paused');
    await t.restart();
    expect((await show(r.body.id)).status).toBe('paused');
    // Paused: age the assignments past the rate window; still nothing new is assigned.
    await db().updateTable('rollout_targets').set({ assigned_at: Date.now() - 120_000 }).where('rollout_id', '=', r.body.id).where('status', '=', 'assigned').execute();
    await new Promise((res) => setTimeout(res, 500));
    expect((await targets(r.body.id, 'assigned')).length).toBe(5);
    expect((await t.call('POST', `/v1/rollouts/${r.body.id}/resume`, { body: null })).body.status).toBe('running');
    await waitFor('second batch after resume', async () => (await targets(r.body.id, 'assigned')).length === 10);
    await new Promise((res) => setTimeout(res, 400));
    expect((await targets(r.body.id, 'assigned')).length).toBe(10);
    expect((await events('rollout.paused', r.body.id)).length).toBe(1);
    expect((await events('rollout.resumed', r.body.id)).length).toBe(1);
    await t.call('POST', `/v1/rollouts/${r.body.id}/abort`, { body: null });
  });

  test('the store is the truth: a report stored by the gateway whose event was lost still counts', async () => {
    await createNames(t.call, 'lost-line', 3);
    const r = await create({ select: 'name:lost-line-*', waves: [100], minExecuted: 100 });
    const assigned = await waitFor('assigned', async () => {
      const a = await targets(r.body.id, 'assigned');
      return a.length === 3 ? a : undefined;
    });
    // A device bound to the first name, and its report as the gateway stores it, with no bus event.
    const dev = await t.call('POST', '/v1/devices', { body: { model: 'kuka-kr16' } });
    await db()
      .insertInto('device_update_reports')
      .values({ id: randomUUID(), device_id: dev.body.id, name_id: assigned[0].nameId, release_id: release2, version: '2.0.0', phase: 'installed', code: null, progress: null, received_at: Date.now() + 5 })
      .execute();
    const after = await waitFor('reconciled', async () => {
      const x = (await targets(r.body.id)).find((y) => y.nameId === assigned[0].nameId);
      return x?.status === 'installed' ? x : undefined;
    });
    expect(after.deviceId).toBe(dev.body.id);
    await t.call('POST', `/v1/rollouts/${r.body.id}/abort`, { body: null });
  });

  test('fail: devices that do not report installed within the timeout abort the rollout (timed out)', async () => {
    await createNames(t.call, 'mute-line', 25);
    const r = await create({ select: 'name:mute-line-*', waves: [100], timeout: '1s' });
    const done = await waitFor('aborted', async () => {
      const s = await show(r.body.id);
      return s.status === 'aborted' ? s : undefined;
    });
    expect(done.counts).toMatchObject({ timedOut: 25 });
    expect(done.abortReason).toMatch(/failure ratio 1\.000/);
    expect((await targets(r.body.id, 'timed_out'))[0].code).toBe('ROLLOUT_TIMED_OUT');
  });

  test('fail: a health rule on diagnostics after install aborts the rollout', async () => {
    await createNames(t.call, 'hot-line', 20);
    const r = await create({ select: 'name:hot-line-*', waves: [100], minExecuted: 10, healthRule: 'diagnostics.motor.temp < 80' });
    const assigned = await waitFor('assigned', async () => {
      const a = await targets(r.body.id, 'assigned');
      return a.length === 20 ? a : undefined;
    });
    for (const a of assigned) report(a.nameId, release2, 'installed');
    await waitFor('installed', async () => (await show(r.body.id)).counts.installed === 20 || (await show(r.body.id)).status !== 'running');
    // Diagnostics after install, as the gateway stores them under the bound name: 5 of 20 run hot.
    const now = Date.now() + 10;
    await db()
      .insertInto('diagnostics')
      .values(assigned.map((a, i) => ({ name_id: a.nameId, name: a.name, device_id: randomUUID(), received_at: now, payload: JSON.stringify({ motor: { temp: i < 5 ? 95 : 60 } }) })))
      .execute();
    const done = await waitFor('aborted', async () => {
      const s = await show(r.body.id);
      return s.status === 'aborted' ? s : undefined;
    });
    expect(done.counts).toMatchObject({ unhealthy: 5 });
    expect((await targets(r.body.id, 'unhealthy')).map((x) => x.code)).toEqual(Array(5).fill('ROLLOUT_HEALTH_RULE'));
  });
});
