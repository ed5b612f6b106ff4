/**
 * The store-backed token bucket behind the cluster-wide provisioning limits (issue 15 follow-up),
 * on both stores: two limiters standing for two nodes, taking concurrently from one key, grant
 * exactly the burst between them; the bucket refills with time; keys and limiters are apart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { StoreRateLimiter } from '../../src/modules/cluster/store-rate-limiter.js';
import { openStore, type Store } from '../../src/store/open-store.js';
import { createPgDatabase, DIALECTS } from '../support/databases.js';

describe.each(DIALECTS)('store-backed rate limiter (%s)', (dialect) => {
  let store: Store;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    if (dialect === 'postgres') {
      const pg = await createPgDatabase();
      store = await openStore({ databaseUrl: pg.url });
      cleanup = pg.drop;
    } else {
      const dir = mkdtempSync(join(tmpdir(), 'fleetkey-rl-'));
      store = await openStore({ sqliteFile: join(dir, 'db.sqlite') });
      cleanup = async () => rmSync(dir, { recursive: true, force: true });
    }
  });
  afterAll(async () => {
    await store?.close();
    await cleanup?.();
  });
  const logger = pino({ level: 'silent' });

  test('fail: two limiters on one store (two nodes) taking at once grant exactly the burst in total, then answer the wait', async () => {
    const a = new StoreRateLimiter(store, 'prov', 60, 5, logger);
    const b = new StoreRateLimiter(store, 'prov', 60, 5, logger);
    const now = 1_000_000;
    const waits = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).take('10.0.0.1', now)));
    expect(waits.filter((w) => w === 0)).toHaveLength(5);
    // 60 a minute: the next unit is one second away.
    expect(Math.max(...waits)).toBe(1_000);
    // Refilled with time: 2 s later, two more units.
    const later = await Promise.all([a.take('10.0.0.1', now + 2_000), b.take('10.0.0.1', now + 2_000), a.take('10.0.0.1', now + 2_000)]);
    expect(later.filter((w) => w === 0)).toHaveLength(2);
    // Another key and another limiter have their own buckets.
    expect(await a.take('10.0.0.2', now)).toBe(0);
    expect(await new StoreRateLimiter(store, 'other', 60, 1, logger).take('10.0.0.1', now)).toBe(0);
  });
});
