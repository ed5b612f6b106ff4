import { describe, expect, test } from 'vitest';
import { migrateToLatest } from '../../src/store/migrate.js';
import * as m001 from '../../src/store/migrations/001-registry.js';
import * as m002 from '../../src/store/migrations/002-ca.js';
import * as m003 from '../../src/store/migrations/003-provisioning.js';
import * as m004 from '../../src/store/migrations/004-data.js';
import * as m005 from '../../src/store/migrations/005-enrollment-decision.js';
import { DIALECTS, migrateOnly, openBareDatabase as open } from '../support/databases.js';

const BEFORE_006 = { '001-registry': m001, '002-ca': m002, '003-provisioning': m003, '004-data': m004, '005-enrollment-decision': m005 };

describe.each(DIALECTS)('migration 006 (message keys) on %s', (dialect) => {
  test('rows stored under UUID keys survive, in time order, and new rows get the next key', async () => {
    const { db, close } = await open(dialect);
    try {
      await migrateOnly(db, dialect, BEFORE_006);
      for (const i of [2, 0, 1]) {
        await db.insertInto('telemetry').values({ id: `00000000-0000-4000-8000-00000000000${i}`, device_id: 'dev-a', name_id: null, received_at: 1000 + i, payload: `{"i":${i}}` }).execute();
        await db.insertInto('diagnostics').values({ id: `10000000-0000-4000-8000-00000000000${i}`, device_id: 'dev-a', name_id: 'n1', name: 'line-1', received_at: 2000 + i, payload: `{"d":${i}}` }).execute();
      }
      await migrateToLatest(db, dialect);
      const t = await db.selectFrom('telemetry').select(['id', 'received_at', 'payload']).orderBy('id').execute();
      expect(t.map((x) => [Number(x.id), Number(x.received_at), x.payload])).toEqual([[1, 1000, '{"i":0}'], [2, 1001, '{"i":1}'], [3, 1002, '{"i":2}']]);
      const d = await db.selectFrom('diagnostics').select(['id', 'name', 'received_at']).orderBy('id').execute();
      expect(d.map((x) => [Number(x.id), x.name, Number(x.received_at)])).toEqual([[1, 'line-1', 2000], [2, 'line-1', 2001], [3, 'line-1', 2002]]);
      await db.insertInto('telemetry').values({ device_id: 'dev-b', name_id: null, received_at: 5000, payload: '{}' }).execute();
      const last = await db.selectFrom('telemetry').select(['id', 'device_id']).orderBy('id', 'desc').executeTakeFirstOrThrow();
      expect([Number(last.id), last.device_id]).toEqual([4, 'dev-b']);
    } finally {
      await close();
    }
  });
});
