import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { GroupCommit } from '../../src/context/group-commit.js';
import { UnitOfWork } from '../../src/context/unit-of-work.js';
import { AuditLog } from '../../src/modules/audit/audit-log.js';
import { EventBus, type FleetEvent } from '../../src/modules/events/event-bus.js';
import { systemClock } from '../../src/context/clock.js';
import { opCtx } from '../support/ctx.js';
import { DIALECTS } from '../support/databases.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

describe('group commit', () => {
  test('items submitted within the linger share one write, each resolved with its own result', async () => {
    const writes: number[][] = [];
    const g = new GroupCommit<number, number>(async (xs) => {
      writes.push(xs);
      return xs.map((x) => x * 10);
    }, { maxBatch: 100, lingerMs: 5 });
    const out = await Promise.all([1, 2, 3, 4].map((x) => g.submit(x)));
    expect(out).toEqual([10, 20, 30, 40]);
    expect(writes).toEqual([[1, 2, 3, 4]]);
  });

  test('a full batch is written at once and the rest follows in the next write', async () => {
    const writes: number[][] = [];
    const g = new GroupCommit<number, number>(async (xs) => {
      writes.push(xs);
      return xs;
    }, { maxBatch: 3, lingerMs: 10_000 });
    const started = Date.now();
    await Promise.all([1, 2, 3, 4, 5].map((x) => g.submit(x)));
    expect(writes).toEqual([[1, 2, 3], [4, 5]]);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  test('fail: a failed write rejects its own items only; later items still land', async () => {
    let n = 0;
    const g = new GroupCommit<string, string>(async (xs) => {
      if (n++ === 0) throw new Error('disk full');
      return xs;
    }, { maxBatch: 10, lingerMs: 1 });
    const first = await Promise.allSettled([g.submit('a'), g.submit('b')]);
    expect(first.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(await g.submit('c')).toBe('c');
  });

  test('drain writes what is queued without waiting for the linger', async () => {
    const g = new GroupCommit<number, number>(async (xs) => xs, { maxBatch: 10, lingerMs: 60_000 });
    let landed = false;
    const p = g.submit(1).then(() => (landed = true));
    await g.drain();
    await p;
    expect(landed).toBe(true);
    expect(g.pending).toBe(0);
  });
});

describe.each(DIALECTS)('unit of work batch on %s', (dialect) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(dialect);
  });
  afterAll(async () => t?.stop());
  /** A unit of work on the suite's store with a bus of its own, so events are this test's only. */
  const parts = () => {
    const audit = new AuditLog(t.server.store, systemClock);
    const bus = new EventBus((e) => {
      throw e;
    });
    const seen: FleetEvent[] = [];
    bus.subscribe((e) => seen.push(e));
    return { audit, seen, uow: new UnitOfWork(t.server.store, audit, bus, systemClock) };
  };

  test('each operation of a batch has its own chained audit entry and its events, published after commit', async () => {
    const { audit, seen, uow } = parts();
    const subjects = Array.from({ length: 7 }, (_, i) => `device:batch-${dialect}-${i}`);
    await uow.runBatch(opCtx('batch-test'), subjects.map((subject, i) => ({
      op: { action: 'device.connect', subject },
      fn: async (w) => {
        w.note({ i });
        await w.emit('device.connected', subject, { i });
      },
    })));
    const entries = await audit.list({ action: 'device.connect', limit: 1000 });
    const mine = entries.filter((e) => subjects.includes(e.subject ?? ''));
    expect(mine.map((e) => e.subject)).toEqual(subjects);
    expect(mine.map((e) => e.detail)).toEqual(subjects.map((_, i) => ({ i })));
    expect(seen.map((e) => e.subject)).toEqual(subjects);
    expect((await audit.verify()).ok).toBe(true);
  });

  test('fail: one failing operation rolls back the whole batch: no entry, no event', async () => {
    const { audit, seen, uow } = parts();
    const before = (await audit.verify()).entries;
    const ops = ['ok', 'boom'].map((k) => ({
      op: { action: 'device.connect', subject: `device:${k}` },
      fn: async (w: Parameters<Parameters<UnitOfWork['run']>[2]>[0]) => {
        await w.emit('device.connected', `device:${k}`, {});
        if (k === 'boom') throw new Error('boom');
      },
    }));
    await expect(uow.runBatch(opCtx(), ops)).rejects.toThrow('boom');
    expect((await audit.verify()).entries).toBe(before);
    expect(seen).toEqual([]);
  });
});
