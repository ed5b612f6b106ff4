import { closeSync, fchmodSync, openSync } from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, type Transaction } from 'kysely';
import pg from 'pg';
import type { Dialect } from './dialect.js';
import { migrateToLatest } from './migrate.js';
import type { Database } from './schema.js';

export type Tx = Transaction<Database>;

export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** Runs `fn` in one transaction; everything a mutation writes (row, audit, outbox) goes in it. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** Connections of the pool (metrics, readiness); SQLite is one connection. */
  poolStats?(): { total: number; idle: number; waiting: number };
}

export interface StoreOptions {
  /** `postgres://…` selects PostgreSQL; otherwise `sqliteFile` is used. */
  databaseUrl?: string | undefined;
  sqliteFile?: string;
  /** Pool size for PostgreSQL. */
  poolSize?: number;
  /** Errors on idle pooled connections (a PostgreSQL restart); the pool replaces the client. */
  onIdleError?: (e: Error) => void;
}

// BIGINT (int8) comes back from pg as a string; our BIGINTs are epoch milliseconds and
// sequence numbers, far below 2^53, so a JS number is exact.
pg.types.setTypeParser(20, (v) => Number(v));

export async function openStore(options: StoreOptions): Promise<Store> {
  const url = options.databaseUrl;
  let db: Kysely<Database>;
  let dialect: Dialect;
  let poolStats = (): { total: number; idle: number; waiting: number } => ({ total: 1, idle: 0, waiting: 0 });
  if (url !== undefined && /^postgres(ql)?:\/\//.test(url)) {
    dialect = 'postgres';
    const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10 });
    // Without a listener an idle client's error (server restart, admin termination) is an
    // uncaught exception that takes the whole server down.
    pool.on('error', (e) => options.onIdleError?.(e));
    poolStats = () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount });
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  } else {
    dialect = 'sqlite';
    const file = options.sqliteFile ?? ':memory:';
    if (file !== ':memory:') {
      // Token hashes and sealed secrets live here: created 0600 whatever the umask (SQLite would
      // create it 0644, and gives its -wal and -shm files the database file's mode). An existing
      // file is left as it is: the data-dir check refuses one open to others, never fixes it.
      createPrivateFile(file);
    }
    const sqlite = new BetterSqlite3(file);
    // WAL lets readers run beside the writer; synchronous=FULL makes a commit survive power loss,
    // which matters once the gateway acknowledges QoS 1 messages on commit.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  }
  await migrateToLatest(db, dialect);
  return {
    db,
    dialect,
    transaction: (fn) => db.transaction().execute(fn),
    close: () => db.destroy(),
    poolStats,
  };
}

/** True when `e` is a unique-constraint violation, on either dialect. */
export function isUniqueViolation(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const code = (e as { code?: unknown }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** True when `e` is the refusal of an overlapping binding interval (migration 007), on either dialect. */
export function isOverlapViolation(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const { code, message } = e as { code?: unknown; message?: unknown };
  // 23P01: exclusion_violation.
  return code === '23P01' || (code === 'SQLITE_CONSTRAINT_TRIGGER' && typeof message === 'string' && message.includes('binding intervals overlap'));
}

/**
 * Kysely's SQLite driver prepares every query anew; compiling the SQL is a measurable share of a
 * short transaction. Statements are reusable in better-sqlite3, so keep the compiled ones by SQL
 * text (bounded: our queries are a fixed set, dynamic `in (...)` lists aside).
 */
function withStatementCache(db: BetterSqlite3.Database): BetterSqlite3.Database {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return new Proxy(db, {
    get(target, prop, receiver) {
      if (prop === 'prepare') {
        return (sql: string) => {
          let st = cache.get(sql);
          if (st === undefined) {
            st = target.prepare(sql);
            if (cache.size >= 2000) cache.clear();
            cache.set(sql, st);
          }
          return st;
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

function createPrivateFile(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (e) {
    if ((e as { code?: unknown }).code === 'EEXIST') return;
    throw e;
  }
  try {
    fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
}
