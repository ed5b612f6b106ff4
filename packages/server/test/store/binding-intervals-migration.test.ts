import { randomUUID } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { migrateToLatest } from '../../src/store/migrate.js';
import * as m001 from '../../src/store/migrations/001-registry.js';
import * as m002 from '../../src/store/migrations/002-ca.js';
import * as m003 from '../../src/store/migrations/003-provisioning.js';
import * as m004 from '../../src/store/migrations/004-data.js';
import * as m005 from '../../src/store/migrations/005-enrollment-decision.js';
import * as m006 from '../../src/store/migrations/006-message-keys.js';
import { DIALECTS, migrateOnly, openBareDatabase } from '../support/databases.js';

const BEFORE_007 = { '001-registry': m001, '002-ca': m002, '003-provisioning': m003, '004-data': m004, '005-enrollment-decision': m005, '006-message-keys': m006 };

describe.each(DIALECTS)('migration 007 (binding intervals) on %s', (dialect) => {
  /** A database at 006 holding the given [from, to) bindings of one name over devices a and b. */
  async function at006(intervals: Array<[device: 'a' | 'b', from: number, to: number | null]>) {
    const { db, close } = await openBareDatabase(dialect);
    await migrateOnly(db, dialect, BEFORE_007);
    const nameId = randomUUID();
    const dev = { a: randomUUID(), b: randomUUID() };
    await db.insertInto('names').values({ id: nameId, name: 'cell-1', tags: '{}', created_at: 0, updated_at: 0 }).execute();
    for (const id of Object.values(dev)) await db.insertInto('devices').values({ id, status: 'active', created_at: 0, updated_at: 0 }).execute();
    const ids: string[] = [];
    for (const [d, from, to] of intervals) {
      const id = randomUUID();
      ids.push(id);
      await db.insertInto('bindings').values({ id, name_id: nameId, device_id: dev[d], valid_from: from, valid_to: to, bind_actor: 'old' }).execute();
    }
    return { db, close, ids };
  }

  test('a history without overlaps (touching boundaries, an empty interval) migrates and is then guarded', async () => {
    const { db, close } = await at006([['a', 1_000, 2_000], ['b', 2_000, 2_000], ['b', 2_000, 3_000], ['a', 3_000, null]]);
    try {
      await migrateToLatest(db, dialect);
      const name = await db.selectFrom('names').select('id').executeTakeFirstOrThrow();
      // Device b again, inside a's first interval: refused now that 007 guards the table.
      const other = (await db.selectFrom('bindings').select('device_id').where('valid_to', '=', 3_000).executeTakeFirstOrThrow()).device_id;
      await expect(db.insertInto('bindings').values({ id: randomUUID(), name_id: name.id, device_id: other, valid_from: 1_500, valid_to: 1_600, bind_actor: 'x' }).execute()).rejects.toThrow();
    } finally {
      await close();
    }
  });

  test('fail: a history that already overlaps stops the upgrade and names the rows (append-only history is not rewritten by a guess)', async () => {
    const { db, close, ids } = await at006([['a', 1_000, 2_000], ['b', 1_500, 2_500]]);
    try {
      const err = await migrateToLatest(db, dialect).then(() => null, (e: unknown) => e as Error);
      expect(err?.message).toMatch(/migration 007-binding-intervals failed: binding history already holds overlapping intervals/);
      expect(err?.message).toContain([...ids].sort().join(' overlaps '));
    } finally {
      await close();
    }
  });
});
