import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Staged rollouts (issue 12 part C). `rollouts` holds the plan and its state; `rollout_targets`
 * one row per NAME the selection resolved to at creation (logical identity: the device holding
 * the name when it reports is the one that counts). The store is the truth: the engine's ticker
 * resumes from these rows after a restart. Ratios are integer basis points (0..10000) so both
 * dialects store and compare them exactly. `release_id` deliberately has no foreign key: the
 * releases table belongs to migration 010 and the engine checks the release through its service.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  const ms = 'bigint' as const;
  await db.schema
    .createTable('rollouts')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('release_id', 'varchar(128)', (c) => c.notNull())
    .addColumn('selector', 'varchar(300)', (c) => c.notNull())
    .addColumn('waves', 'text', (c) => c.notNull()) // JSON: cumulative percentages
    .addColumn('wave_sizes', 'text', (c) => c.notNull()) // JSON: names per wave
    .addColumn('max_per_minute', 'integer', (c) => c.notNull())
    .addColumn('abort_failure_bp', 'integer', (c) => c.notNull())
    .addColumn('success_bp', 'integer', (c) => c.notNull())
    .addColumn('min_executed', 'integer', (c) => c.notNull())
    .addColumn('timeout_ms', ms, (c) => c.notNull())
    .addColumn('health_rule', 'varchar(200)')
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('current_wave', 'integer', (c) => c.notNull())
    .addColumn('abort_reason', 'text')
    .addColumn('created_by', 'varchar(200)', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('updated_at', ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('rollouts_status').on('rollouts').column('status').execute();
  await db.schema
    .createTable('rollout_targets')
    .addColumn('rollout_id', 'varchar(36)', (c) => c.notNull().references('rollouts.id'))
    .addColumn('name_id', 'varchar(36)', (c) => c.notNull().references('names.id'))
    .addColumn('name', 'varchar(128)', (c) => c.notNull())
    .addColumn('wave', 'integer', (c) => c.notNull())
    .addColumn('position', 'integer', (c) => c.notNull())
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('previous_release_id', 'varchar(128)')
    .addColumn('device_id', 'varchar(36)')
    .addColumn('code', 'varchar(64)')
    .addColumn('assigned_at', ms)
    .addColumn('outcome_at', ms)
    .addPrimaryKeyConstraint('rollout_targets_pk', ['rollout_id', 'name_id'])
    .execute();
  await db.schema.createIndex('rollout_targets_progress').on('rollout_targets').columns(['rollout_id', 'status', 'wave']).execute();
  // The report path: which active target does this name's report answer?
  await db.schema.createIndex('rollout_targets_name').on('rollout_targets').columns(['name_id', 'status']).execute();
}
