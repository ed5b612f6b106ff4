import { CompiledQuery } from 'kysely';
import type { Dialect } from './dialect.js';
import type { Tx } from './open-store.js';
import type { Database } from './schema.js';

/** Rows per statement: bound parameters stay far below SQLite's 32,766 and PostgreSQL's 65,535. */
const CHUNK_ROWS = 1000;

/**
 * A multi-row INSERT built as text with positional parameters, for the message path only. The
 * query builder turns every value into a frozen node first; at tens of thousands of rows a second
 * that garbage was a fifth of the gateway's time (GC). Table and column names come from code,
 * never from input; values are always parameters.
 */
export async function insertRows<T extends keyof Database & string>(
  tx: Tx,
  dialect: Dialect,
  table: T,
  columns: readonly (keyof Database[T] & string)[],
  rows: readonly unknown[][],
): Promise<void> {
  for (let start = 0; start < rows.length; start += CHUNK_ROWS) {
    const chunk = rows.slice(start, start + CHUNK_ROWS);
    const params: unknown[] = [];
    const tuples: string[] = [];
    for (const row of chunk) {
      const marks: string[] = [];
      for (const v of row) {
        params.push(v);
        marks.push(dialect === 'postgres' ? `$${params.length}` : '?');
      }
      tuples.push(`(${marks.join(',')})`);
    }
    await tx.executeQuery(CompiledQuery.raw(`insert into "${table}" (${columns.map((c) => `"${c}"`).join(',')}) values ${tuples.join(',')}`, params));
  }
}
