import { FleetkeyError } from '@fleetkey/protocol';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { systemClock } from '../../src/context/clock.js';
import { UnitOfWork, type Work } from '../../src/context/unit-of-work.js';
import { AuditLog } from '../../src/modules/audit/audit-log.js';
import { EventBus } from '../../src/modules/events/event-bus.js';
import { opCtx } from '../support/ctx.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

// Deadlocks are PostgreSQL's: SQLite runs one writer at a time.
describe('unit of work on postgres', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer('postgres');
  });
  afterAll(async () => t?.stop());

  test('fail: the victim of a deadlock between two writers is an audited CONFLICT refusal that changed nothing, not a server error', async () => {
    const store = t.server.store;
    const audit = new AuditLog(store, systemClock);
    const uow = new UnitOfWork(store, audit, new EventBus(() => undefined), systemClock);
    const ctx = opCtx();
    const [d1, d2] = [(await t.server.services.devices.create(ctx, {})).id, (await t.server.services.devices.create(ctx, {})).id];
    let arrived = 0;
    let release!: () => void;
    const bothLocked = new Promise<void>((r) => (release = r));
    const lock = (w: Work, id: string) => w.tx.selectFrom('devices').select('id').where('id', '=', id).forUpdate().execute();
    // Each holds one device row and then asks for the other's: a lock cycle PostgreSQL breaks.
    const crossing = (first: string, second: string) =>
      uow.run(ctx, { action: 'test.deadlock', subject: `device:${first}` }, async (w) => {
        await lock(w, first);
        if (++arrived === 2) release();
        await bothLocked;
        await w.tx.updateTable('devices').set({ model: `locked-by-${first}` }).where('id', '=', first).execute();
        await lock(w, second);
      });
    const results = await Promise.allSettled([crossing(d1, d2), crossing(d2, d1)]);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(refused).toHaveLength(1);
    expect(refused[0]!.reason).toBeInstanceOf(FleetkeyError);
    expect((refused[0]!.reason as FleetkeyError).code).toBe('CONFLICT');
    const models = await store.db.selectFrom('devices').select(['id', 'model']).where('id', 'in', [d1, d2]).execute();
    // Exactly the winner's change landed.
    expect(models.filter((m) => m.model !== null)).toHaveLength(1);
    const entries = await audit.list({ action: 'test.deadlock' });
    expect(entries.map((e) => [e.outcome, e.code]).sort()).toEqual([
      ['refused', 'CONFLICT'],
      ['success', null],
    ]);
  }, 30_000);
});
