import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { codeOf, opCtx } from '../support/ctx.js';
import { DIALECTS } from '../support/databases.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe.each(DIALECTS)('identity model on %s', (dialect) => {
  let t: TestServer;
  const ctx = opCtx();
  beforeAll(async () => {
    t = await startTestServer(dialect);
  });
  afterAll(async () => t?.stop());
  const s = () => t.server.services;
  const device = async () => (await s().devices.create(ctx, { model: 'robot' })).id;
  let n = 0;
  const name = async () => (await s().names.create(ctx, { name: `cell-${dialect}-${++n}` })).name;

  describe('devices', () => {
    test('fail: a duplicate id is refused and ids are never reused, even after retirement', async () => {
      const id = await device();
      expect(await codeOf(s().devices.create(ctx, { id }))).toBe('DEVICE_EXISTS');
      await s().devices.changeStatus(ctx, id, 'retire', 'end of life');
      expect(await codeOf(s().devices.create(ctx, { id }))).toBe('DEVICE_EXISTS');
    });

    test('fail: transitions outside the lifecycle are refused and change nothing', async () => {
      const id = await device();
      expect(await codeOf(s().devices.changeStatus(ctx, id, 'resume', undefined))).toBe('DEVICE_STATUS_TRANSITION');
      await s().devices.changeStatus(ctx, id, 'revoke', 'stolen');
      for (const a of ['suspend', 'resume', 'retire', 'revoke'] as const) {
        expect(await codeOf(s().devices.changeStatus(ctx, id, a, undefined))).toBe('DEVICE_STATUS_TRANSITION');
      }
      expect((await s().devices.get(id)).status).toBe('revoked');
    });

    test('minted ids are UUIDv4 and distinct', async () => {
      const ids = await Promise.all(Array.from({ length: 20 }, device));
      for (const id of ids) expect(id).toMatch(UUID_V4);
      expect(new Set(ids).size).toBe(ids.length);
    });

    test('suspend then resume returns to the status before suspension', async () => {
      const id = await device();
      expect((await s().devices.changeStatus(ctx, id, 'suspend', 'maintenance')).status).toBe('suspended');
      expect((await s().devices.changeStatus(ctx, id, 'resume', undefined)).status).toBe('manufactured');
    });
  });

  describe('bindings', () => {
    test('fail: a name holds at most one device and a device at most one name', async () => {
      const [a, b] = [await device(), await device()];
      const [n1, n2] = [await name(), await name()];
      await s().bindings.bind(ctx, n1, a, undefined);
      expect(await codeOf(s().bindings.bind(ctx, n1, b, undefined))).toBe('NAME_ALREADY_BOUND');
      expect(await codeOf(s().bindings.bind(ctx, n2, a, undefined))).toBe('DEVICE_ALREADY_BOUND');
      expect((await s().names.show(n2)).deviceId).toBeNull();
    });

    test('fail: a revoked or retired device cannot be bound', async () => {
      for (const action of ['revoke', 'retire'] as const) {
        const d = await device();
        await s().devices.changeStatus(ctx, d, action, undefined);
        expect(await codeOf(s().bindings.bind(ctx, await name(), d, undefined))).toBe('DEVICE_NOT_BINDABLE');
      }
    });

    test('fail: the database itself refuses a second open binding (not only the code)', async () => {
      const [a, b] = [await device(), await device()];
      const nm = await name();
      await s().bindings.bind(ctx, nm, a, undefined);
      const nameId = (await s().names.show(nm)).id;
      const row = { name_id: nameId, valid_from: Date.now(), valid_to: null, bind_reason: null, bind_actor: 'sql', unbind_reason: null, unbind_actor: null };
      // Same name, other device; then other name, same device: both violate a partial unique index.
      await expect(t.server.store.db.insertInto('bindings').values({ ...row, id: crypto.randomUUID(), device_id: b }).execute()).rejects.toThrow();
      const other = (await s().names.create(ctx, { name: `${nm}-x` })).id;
      await expect(t.server.store.db.insertInto('bindings').values({ ...row, id: crypto.randomUUID(), name_id: other, device_id: a }).execute()).rejects.toThrow();
    });

    test('fail: binding history is append-only in the database', async () => {
      const nm = await name();
      const d = await device();
      await s().bindings.bind(ctx, nm, d, undefined);
      await s().bindings.unbind(ctx, nm, 'test');
      await expect(sql`delete from bindings`.execute(t.server.store.db)).rejects.toThrow(/append-only/);
      await expect(sql`update bindings set valid_to = 0 where valid_to is not null`.execute(t.server.store.db)).rejects.toThrow();
    });

    test('replace moves the name in one step, keeps history, optionally revokes the old device', async () => {
      const [a, b, c] = [await device(), await device(), await device()];
      const nm = await name();
      await s().bindings.bind(ctx, nm, a, 'installed');
      const r1 = await s().bindings.replace(ctx, nm, { deviceId: b, expectedDeviceId: a, reason: 'gripper worn' });
      expect(r1).toMatchObject({ previousDeviceId: a, oldDeviceRevoked: false });
      expect((await s().devices.get(a)).status).toBe('manufactured');
      const r2 = await s().bindings.replace(ctx, nm, { deviceId: c, expectedDeviceId: b, revokeOld: true, reason: 'crash' });
      expect(r2).toMatchObject({ previousDeviceId: b, oldDeviceRevoked: true });
      expect((await s().devices.get(b)).status).toBe('revoked');
      expect((await s().devices.get(c)).name).toBe(nm);
      expect((await s().devices.get(b)).name).toBeNull();
      const h = await s().bindings.history(nm);
      expect(h.bindings.map((x) => x.deviceId)).toEqual([a, b, c]);
      expect(h.bindings[0]).toMatchObject({ bindReason: 'installed', unbindReason: 'gripper worn' });
      expect(h.bindings[1]?.to).toBe(h.bindings[2]?.from);
      expect(h.bindings[2]?.to).toBeNull();
    });

    test('fail: replace refuses a name with no binding, the same device, and a revoked replacement', async () => {
      const [a, b] = [await device(), await device()];
      const nm = await name();
      expect(await codeOf(s().bindings.replace(ctx, nm, { deviceId: a, expectedDeviceId: b }))).toBe('NAME_NOT_BOUND');
      await s().bindings.bind(ctx, nm, a, undefined);
      expect(await codeOf(s().bindings.replace(ctx, nm, { deviceId: a, expectedDeviceId: a }))).toBe('SAME_DEVICE');
      await s().devices.changeStatus(ctx, b, 'revoke', undefined);
      expect(await codeOf(s().bindings.replace(ctx, nm, { deviceId: b, expectedDeviceId: a, revokeOld: true }))).toBe('DEVICE_NOT_BINDABLE');
      // The refused replace rolled back entirely: the old device is still bound and not revoked.
      expect((await s().names.show(nm)).deviceId).toBe(a);
      expect((await s().devices.get(a)).status).toBe('manufactured');
    });

    test('race: of many simultaneous replaces of one name exactly one wins', async () => {
      const a = await device();
      const nm = await name();
      await s().bindings.bind(ctx, nm, a, undefined);
      const candidates = await Promise.all(Array.from({ length: 8 }, device));
      const results = await Promise.allSettled(candidates.map((d) => s().bindings.replace(ctx, nm, { deviceId: d, expectedDeviceId: a })));
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost.map((r) => (r.reason as { code: string }).code)).toEqual(Array(7).fill('BINDING_CONFLICT'));
      const h = await s().bindings.history(nm);
      expect(h.bindings).toHaveLength(2);
    });

    test('race: one device bound to many names at once ends with exactly one binding', async () => {
      const d = await device();
      const names = await Promise.all(Array.from({ length: 6 }, name));
      const results = await Promise.allSettled(names.map((nm) => s().bindings.bind(ctx, nm, d, undefined)));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect(['DEVICE_ALREADY_BOUND', 'BINDING_CONFLICT']).toContain((r.reason as { code: string }).code);
      }
    });

    test('who held NAME at T, and which name did DEVICE hold at T', async () => {
      const [a, b] = [await device(), await device()];
      const nm = await name();
      await s().bindings.bind(ctx, nm, a, undefined);
      const tA = Date.now();
      await new Promise((r) => setTimeout(r, 5));
      await s().bindings.replace(ctx, nm, { deviceId: b, expectedDeviceId: a });
      const h = await s().bindings.history(nm);
      const switchAt = Date.parse(h.bindings[1]?.from ?? '');
      expect(await s().bindings.deviceAtName(nm, tA)).toBe(a);
      expect(await s().bindings.deviceAtName(nm, switchAt - 1)).toBe(a);
      expect(await s().bindings.deviceAtName(nm, switchAt)).toBe(b);
      expect(await s().bindings.deviceAtName(nm, Date.parse(h.bindings[0]?.from ?? '') - 1)).toBeNull();
      expect((await s().bindings.nameAtDevice(a, tA))?.name).toBe(nm);
      expect(await s().bindings.nameAtDevice(a, switchAt)).toBeNull();
      expect((await s().bindings.nameAtDevice(b, switchAt))?.name).toBe(nm);
    });

    test('the point-in-time queries are answered from their indexes', async () => {
      const db = t.server.store.db;
      const nameQ = sql`select device_id from bindings where name_id = ${'x'} and valid_from <= ${1} and (valid_to is null or valid_to > ${1}) order by valid_from desc limit 1`;
      const devQ = sql`select name_id from bindings where device_id = ${'x'} and valid_from <= ${1} and (valid_to is null or valid_to > ${1}) order by valid_from desc limit 1`;
      if (dialect === 'sqlite') {
        const plan = async (q: typeof nameQ) => JSON.stringify((await sql`explain query plan ${q}`.execute(db)).rows);
        expect(await plan(nameQ)).toMatch(/bindings_name_time/);
        expect(await plan(devQ)).toMatch(/bindings_device_time/);
      } else {
        // Tiny test tables make a sequential scan cheaper; forbid it to see which index serves.
        await db.transaction().execute(async (tx) => {
          await sql`set local enable_seqscan = off`.execute(tx);
          const plan = async (q: typeof nameQ) => JSON.stringify((await sql`explain ${q}`.execute(tx)).rows);
          expect(await plan(nameQ)).toMatch(/bindings_name_time/);
          expect(await plan(devQ)).toMatch(/bindings_device_time/);
        });
      }
    });
  });

  describe('names', () => {
    test('rename keeps an alias trail; an old name says where it went and is never reused', async () => {
      const d = await device();
      const old = await name();
      await s().bindings.bind(ctx, old, d, undefined);
      const renamed = await s().names.rename(ctx, old, `${old}-renamed`);
      expect(renamed).toMatchObject({ name: `${old}-renamed`, deviceId: d, aliases: [old] });
      const err = await s().names.show(old).catch((e: unknown) => e as { code: string; extra: { movedTo: string } });
      expect(err).toMatchObject({ code: 'NAME_MOVED', extra: { movedTo: `${old}-renamed` } });
      expect(await codeOf(s().names.create(ctx, { name: old }))).toBe('NAME_EXISTS');
      const h = await s().bindings.history(`${old}-renamed`);
      expect(h.aliases).toEqual([old]);
      expect(h.bindings).toHaveLength(1);
      expect((await s().devices.get(d)).name).toBe(`${old}-renamed`);
    });

    test('fail: creating or renaming onto a taken name is refused', async () => {
      const [a, b] = [await name(), await name()];
      expect(await codeOf(s().names.create(ctx, { name: a }))).toBe('NAME_EXISTS');
      expect(await codeOf(s().names.rename(ctx, a, b))).toBe('NAME_EXISTS');
      expect(await codeOf(s().names.rename(ctx, 'no-such-name', 'whatever'))).toBe('NAME_NOT_FOUND');
    });
  });

  describe('audit', () => {
    test('every mutation and every refusal is in the chain, and the chain verifies', async () => {
      const before = (await s().audit.verify()).entries;
      const d = await device();
      await codeOf(s().devices.create(ctx, { id: d }));
      const entries = await s().audit.list({ subject: `device:${d}` });
      expect(entries.map((e) => [e.action, e.outcome, e.code])).toEqual([
        ['device.create', 'success', null],
        ['device.create', 'refused', 'DEVICE_EXISTS'],
      ]);
      expect(entries[0]?.actor).toBe('test-operator');
      const v = await s().audit.verify();
      expect(v).toMatchObject({ ok: true, firstBrokenSeq: null });
      expect(v.entries).toBe(before + 2);
    });

    test('tamper: an edited, deleted or truncated entry is named by verify', async () => {
      const db = t.server.store.db;
      await device();
      await device();
      const all = await s().audit.list({ limit: 1000 });
      const victim = all[all.length - 2]!;
      await expect(sql`update audit_log set actor = 'mallory' where seq = ${victim.seq}`.execute(db)).rejects.toThrow();
      // An attacker with database access drops the guard first; the chain still catches the edit.
      const drop = dialect === 'sqlite' ? sql`drop trigger audit_no_update` : sql`alter table audit_log disable trigger audit_append_only`;
      await drop.execute(db);
      await sql`update audit_log set actor = 'mallory' where seq = ${victim.seq}`.execute(db);
      expect(await s().audit.verify()).toMatchObject({ ok: false, firstBrokenSeq: victim.seq });
      await sql`update audit_log set actor = ${victim.actor} where seq = ${victim.seq}`.execute(db);
      expect((await s().audit.verify()).ok).toBe(true);
    });
  });
});
