import { randomBytes } from 'node:crypto';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type Migration } from 'kysely';
import pg from 'pg';

export const DIALECTS = ['sqlite', 'postgres'] as const;
export type TestDialect = (typeof DIALECTS)[number];

// The project's machines run PostgreSQL on 127.0.0.1:5432 with trust auth (.ci/run starts it).
// A suite that cannot reach it fails: silently skipping would let CI pass without PostgreSQL.
const ADMIN_URL = process.env['FLEETKEY_TEST_PG'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A fresh, empty PostgreSQL database for one suite, dropped by the returned function. */
export async function createPgDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `fk_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

/** A bare, unmigrated database of either dialect (for migration tests), closed and dropped by close(). */
export async function openBareDatabase(dialect: TestDialect): Promise<{ db: Kysely<any>; close(): Promise<void> }> {
  if (dialect === 'sqlite') {
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new BetterSqlite3(':memory:') }) });
    return { db, close: () => db.destroy() };
  }
  const fresh = await createPgDatabase();
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: fresh.url }) }) });
  return {
    db,
    close: async () => {
      await db.destroy();
      await fresh.drop();
    },
  };
}

/** Runs only the given migrations (an older release's list), to test what a later one does to its data. */
export async function migrateOnly(db: Kysely<any>, dialect: TestDialect, migrations: Record<string, { up(db: Kysely<any>, d: TestDialect): Promise<void> }>): Promise<void> {
  const list = Object.fromEntries(Object.entries(migrations).map(([k, m]): [string, Migration] => [k, { up: (d: Kysely<any>) => m.up(d, dialect) }]));
  const r = await new Migrator({ db, provider: { getMigrations: async () => list } }).migrateToLatest();
  if (r.error !== undefined) throw r.error;
}
