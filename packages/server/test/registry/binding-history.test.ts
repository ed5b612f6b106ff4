import { randomUUID } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { up as guardUp } from '../../src/store/migrations/007-binding-intervals.js';
import type { BindingRow } from '../../src/store/schema.js';
import { opCtx } from '../support/ctx.js';
import { DIALECTS } from '../support/databases.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const NAMES = 3;
const DEVICES = 5;

type Op =
  | { readonly kind: 'bind'; readonly name: number; readonly device: number }
  | { readonly kind: 'unbind'; readonly name: number }
  | { readonly kind: 'replace'; readonly name: number; readonly device: number }
  | { readonly kind: 'rename'; readonly name: number }
  | { readonly kind: 'retire'; readonly device: number }
  | { readonly kind: 'stall'; readonly name: number };

const nameIx = fc.nat(NAMES - 1);
const deviceIx = fc.nat(DEVICES - 1);
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('bind' as const), name: nameIx, device: deviceIx }),
  fc.record({ kind: fc.constant('unbind' as const), name: nameIx }),
  fc.record({ kind: fc.constant('replace' as const), name: nameIx, device: deviceIx }),
  fc.record({ kind: fc.constant('rename' as const), name: nameIx }),
  // Retirement frees the device's name under the device's lock only.
  fc.record({ kind: fc.constant('retire' as const), device: deviceIx }),
  // Another transaction holding the name's row for a while, as a slow writer does: the writers
  // queued behind it read the clock before it lets go.
  fc.record({ kind: fc.constant('stall' as const), name: nameIx }),
);
/** Rounds run one after another; the operations of a round run all at once. */
const interleaving = fc.array(fc.array(op, { minLength: 2, maxLength: 8 }), { minLength: 1, maxLength: 4 });

/** Half-open intervals [from, to); an empty one (bound and unbound in the same millisecond) holds no instant. */
const overlaps = (a: BindingRow, b: BindingRow): boolean => {
  const end = (r: BindingRow) => r.valid_to ?? Number.POSITIVE_INFINITY;
  return a.valid_from < end(a) && b.valid_from < end(b) && a.valid_from < end(b) && b.valid_from < end(a);
};
const holds = (r: BindingRow, at: number): boolean => r.valid_from <= at && (r.valid_to === null || r.valid_to > at);

describe.each(DIALECTS)('binding history on %s', (dialect) => {
  let t: TestServer;
  const ctx = opCtx();
  beforeAll(async () => {
    t = await startTestServer(dialect);
  });
  afterAll(async () => t?.stop());
  const s = () => t.server.services;
  const db = () => t.server.store.db;

  /** The name's current string, read fresh: a concurrent rename may have moved it. */
  const nameOf = async (id: string) => (await db().selectFrom('names').select('name').where('id', '=', id).executeTakeFirstOrThrow()).name;

  async function runOp(o: Op, names: string[], devices: string[]): Promise<unknown> {
    const nameId = 'name' in o ? names[o.name]! : '';
    switch (o.kind) {
      case 'bind':
        return s().bindings.bind(ctx, await nameOf(nameId), devices[o.device]!, 'prop');
      case 'unbind':
        return s().bindings.unbind(ctx, await nameOf(nameId), 'prop');
      case 'replace': {
        // As the CLI does it: read the holder, then replace exactly that binding.
        const shown = await s().names.show(await nameOf(nameId));
        return s().bindings.replace(ctx, shown.name, { deviceId: devices[o.device]!, expectedDeviceId: shown.deviceId ?? devices[0]!, reason: 'prop' });
      }
      case 'rename':
        return s().names.rename(ctx, await nameOf(nameId), `h-${randomUUID().slice(0, 13)}`);
      case 'retire':
        return s().devices.changeStatus(ctx, devices[o.device]!, 'retire', 'prop');
      case 'stall':
        return db()
          .transaction()
          .execute(async (tx) => {
            if (dialect === 'postgres') await tx.selectFrom('names').select('id').where('id', '=', nameId).forUpdate().execute();
            await new Promise((r) => setTimeout(r, 15));
          });
    }
  }

  async function checkHistory(names: string[], devices: string[]): Promise<void> {
    const rows = await db()
      .selectFrom('bindings')
      .selectAll()
      .where((eb) => eb.or([eb('name_id', 'in', names), eb('device_id', 'in', devices)]))
      .execute();
    for (const [key, ids] of [['name_id', names] as const, ['device_id', devices] as const]) {
      for (const id of ids) {
        const mine = rows.filter((r) => r[key] === id);
        // Every binding lasts at least a millisecond, and starts are distinct: they order the history.
        for (const r of mine) expect(r.valid_to === null || r.valid_to > r.valid_from).toBe(true);
        expect(new Set(mine.map((r) => r.valid_from)).size).toBe(mine.length);
        for (let i = 0; i < mine.length; i++) {
          for (let j = i + 1; j < mine.length; j++) {
            if (overlaps(mine[i]!, mine[j]!)) throw new Error(`${key} ${id}: ${JSON.stringify(mine[i])} overlaps ${JSON.stringify(mine[j])}`);
          }
        }
        // The point-in-time answers agree with the history at every boundary and just before it.
        const instants = new Set(mine.flatMap((r) => [r.valid_from, r.valid_from - 1, ...(r.valid_to === null ? [] : [r.valid_to, r.valid_to - 1])]));
        for (const at of instants) {
          const expected = mine.find((r) => holds(r, at)) ?? null;
          if (key === 'name_id') {
            expect(await s().bindings.deviceAt(db(), id, at)).toBe(expected?.device_id ?? null);
          } else {
            expect((await s().bindings.nameAt(db(), id, at))?.nameId ?? null).toBe(expected?.name_id ?? null);
          }
        }
      }
    }
  }

  const property = () =>
    fc.assert(
      fc.asyncProperty(interleaving, async (rounds) => {
        const names: string[] = [];
        for (let i = 0; i < NAMES; i++) names.push((await s().names.create(ctx, { name: `h-${randomUUID().slice(0, 13)}` })).id);
        const devices: string[] = [];
        for (let i = 0; i < DEVICES; i++) devices.push((await s().devices.create(ctx, { model: 'prop' })).id);
        for (const round of rounds) {
          const results = await Promise.allSettled(round.map((o) => runOp(o, names, devices)));
          // Every loser is a refusal from the catalogue, never a driver error (deadlock, constraint).
          for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(FleetkeyError);
        }
        await checkHistory(names, devices);
      }),
      { numRuns: dialect === 'postgres' ? 40 : 15 },
    );

  test('fail: no interleaving of concurrent bind/unbind/replace/rename/retire gives a name two devices, or a device two names, at one instant', property, 120_000);

  test('fail: the writers alone keep intervals apart (the database guard of migration 007 dropped for this test)', async () => {
    // With the guard in place an overlapping write would only turn into a refusal; this shows
    // the writers never attempt one.
    const guard = dialect === 'postgres' ? ['bindings_name_no_overlap', 'bindings_device_no_overlap'] : ['bindings_no_overlap'];
    for (const g of guard) {
      await (dialect === 'postgres' ? sql`alter table bindings drop constraint ${sql.id(g)}` : sql`drop trigger ${sql.id(g)}`).execute(db());
    }
    try {
      await property();
    } finally {
      await guardUp(db() as never, dialect);
    }
  }, 120_000);

  describe('the database itself refuses overlapping intervals (not only the code)', () => {
    const row = (nameId: string, deviceId: string, from: number, to: number | null): BindingRow => ({
      id: randomUUID(),
      name_id: nameId,
      device_id: deviceId,
      valid_from: from,
      valid_to: to,
      bind_reason: null,
      bind_actor: 'sql',
      unbind_reason: null,
      unbind_actor: null,
    });
    const fresh = async () => {
      const nameId = (await s().names.create(ctx, { name: `h-${randomUUID().slice(0, 13)}` })).id;
      const a = (await s().devices.create(ctx, {})).id;
      const b = (await s().devices.create(ctx, {})).id;
      return { nameId, a, b };
    };

    test('fail: a second device on one name for an instant the name was already held', async () => {
      const { nameId, a, b } = await fresh();
      await db().insertInto('bindings').values(row(nameId, a, 1_000, 2_000)).execute();
      await expect(db().insertInto('bindings').values(row(nameId, b, 1_500, 2_500)).execute()).rejects.toThrow();
      await expect(db().insertInto('bindings').values(row(nameId, b, 500, null)).execute()).rejects.toThrow();
      // Touching at a boundary is not an overlap: [1000, 2000) then [2000, …).
      await db().insertInto('bindings').values(row(nameId, b, 2_000, null)).execute();
    });

    test('fail: a second name on one device for an instant the device already had one', async () => {
      const { nameId, a } = await fresh();
      const other = (await s().names.create(ctx, { name: `h-${randomUUID().slice(0, 13)}` })).id;
      await db().insertInto('bindings').values(row(nameId, a, 1_000, null)).execute();
      await expect(db().insertInto('bindings').values(row(other, a, 3_000, 4_000)).execute()).rejects.toThrow();
      await db().insertInto('bindings').values(row(other, a, 100, 1_000)).execute();
    });

  });
});
