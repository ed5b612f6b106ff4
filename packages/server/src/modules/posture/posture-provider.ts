import type { PostureFinding, PostureSeverity } from '@fleetkey/protocol';
import { sql, type Kysely, type SelectQueryBuilder } from 'kysely';
import type { Database } from '../../store/schema.js';

/** What every check is asked about. */
export interface PostureParams {
  readonly now: number;
  readonly expiringDays: number;
  readonly idLimit: number;
}

/**
 * A family of posture checks (registry, CA, provisioning, attestation, releases). Each module
 * that owns the tables a check reads provides its own; the posture service only runs them. A
 * provider reports every finding it knows, with count 0 when the check found nothing, so an
 * empty report is distinguishable from a check that did not run.
 */
export interface PostureProvider {
  readonly name: string;
  /** The finding ids this provider reports (listed under `notChecked` when it cannot run). */
  readonly findingIds: readonly string[];
  run(params: PostureParams): Promise<PostureFinding[]>;
}

/** One SQL check: one query that selects the subject ids as `id`. */
export interface SqlCheck {
  readonly id: string;
  readonly severity: PostureSeverity;
  readonly title: string;
  readonly subject: PostureFinding['subject'];
  query(db: Kysely<Database>, p: PostureParams): SelectQueryBuilder<Database, any, { id: string }>;
}

/**
 * Runs a check as exactly one statement: the ids ordered, capped at idLimit, with the full count
 * from a window over the same rows (`count(*) over ()` is computed before LIMIT; SQLite ≥ 3.25,
 * PostgreSQL ≥ 8.4). With idLimit 0 one row is still fetched, for its count.
 */
export async function runSqlCheck(db: Kysely<Database>, provider: string, check: SqlCheck, p: PostureParams): Promise<PostureFinding> {
  const rows = await check
    .query(db, p)
    .select(sql<number | string>`count(*) over ()`.as('total'))
    .orderBy(sql`1`)
    .limit(Math.max(p.idLimit, 1))
    .execute();
  // PostgreSQL returns count(*) as a bigint, which node-postgres hands over as a string.
  const count = rows.length === 0 ? 0 : Number(rows[0]!.total);
  const ids = rows.slice(0, p.idLimit).map((r) => r.id);
  return { id: check.id, provider, severity: check.severity, title: check.title, subject: check.subject, count, ids, truncated: count > ids.length };
}

/** A provider made of SQL checks, run one after the other (one connection, one query each). */
export function sqlProvider(name: string, db: Kysely<Database>, checks: readonly SqlCheck[]): PostureProvider {
  return {
    name,
    findingIds: checks.map((c) => c.id),
    async run(p) {
      const out: PostureFinding[] = [];
      for (const c of checks) out.push(await runSqlCheck(db, name, c, p));
      return out;
    },
  };
}

/**
 * The placeholder for a family whose module is not in this build (step-ca's refusing base): it
 * never reports "nothing found", it makes the report say the checks did not run.
 */
export class UnavailableProvider implements PostureProvider {
  constructor(
    readonly name: string,
    readonly findingIds: readonly string[],
    readonly reason: string,
  ) {}

  run(): Promise<PostureFinding[]> {
    return Promise.reject(new Error(this.reason));
  }
}
