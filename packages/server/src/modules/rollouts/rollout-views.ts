import type { RolloutStatus, RolloutTargetView, RolloutView, TargetStatus } from '@fleetkey/protocol';
import { iso, isoOrNull } from '../../context/clock.js';
import type { Store, Tx } from '../../store/open-store.js';
import type { RolloutRow, RolloutTargetRow } from '../../store/schema.js';
import { BP, type WaveCounts } from './rules.js';

export type Counts = RolloutView['counts'];

const emptyCounts = (): Counts => ({ total: 0, pending: 0, assigned: 0, installed: 0, healthy: 0, failed: 0, timedOut: 0, unhealthy: 0, cancelled: 0 });
const COUNT_KEY: Record<string, keyof Counts> = {
  pending: 'pending',
  assigned: 'assigned',
  installed: 'installed',
  healthy: 'healthy',
  failed: 'failed',
  timed_out: 'timedOut',
  unhealthy: 'unhealthy',
  cancelled: 'cancelled',
};

/**
 * Targets grouped by wave and status, read in one query (counts come back as strings on
 * PostgreSQL). Under a health rule a success is `healthy`; `installed` is still outstanding.
 */
export async function waveCounts(db: Store['db'] | Tx, rolloutId: string, waves: number, healthRule = false): Promise<{ totals: Counts; perWave: WaveCounts[] }> {
  const rows = await db
    .selectFrom('rollout_targets')
    .select(['wave', 'status', (eb) => eb.fn.countAll<number | string>().as('n')])
    .where('rollout_id', '=', rolloutId)
    .groupBy(['wave', 'status'])
    .execute();
  const totals = emptyCounts();
  const perWave: WaveCounts[] = Array.from({ length: waves }, () => ({ pending: 0, assigned: 0, installed: 0, failures: 0 }));
  for (const r of rows) {
    const n = Number(r.n);
    totals.total += n;
    const key = COUNT_KEY[r.status];
    if (key !== undefined) totals[key] += n;
    const w = perWave[r.wave];
    if (w === undefined) continue;
    if (r.status === 'pending') w.pending += n;
    else if (r.status === 'assigned' || (healthRule && r.status === 'installed')) w.assigned += n;
    else if (r.status === 'installed' || r.status === 'healthy') w.installed += n;
    else if (r.status === 'failed' || r.status === 'timed_out' || r.status === 'unhealthy') w.failures += n;
  }
  return { totals, perWave };
}

export function rolloutView(r: RolloutRow, counts: Counts): RolloutView {
  return {
    id: r.id,
    releaseId: r.release_id,
    select: r.selector,
    waves: JSON.parse(r.waves) as number[],
    waveSizes: JSON.parse(r.wave_sizes) as number[],
    maxPerMinute: r.max_per_minute,
    abortFailureRatio: r.abort_failure_bp / BP,
    successRatio: r.success_bp / BP,
    minExecuted: r.min_executed,
    timeoutMs: r.timeout_ms,
    healthRule: r.health_rule,
    status: r.status as RolloutStatus,
    currentWave: r.current_wave,
    abortReason: r.abort_reason,
    createdBy: r.created_by,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
    counts,
  };
}

export const targetView = (t: RolloutTargetRow): RolloutTargetView => ({
  name: t.name,
  nameId: t.name_id,
  wave: t.wave,
  status: t.status as TargetStatus,
  previousReleaseId: t.previous_release_id,
  deviceId: t.device_id,
  code: t.code,
  assignedAt: isoOrNull(t.assigned_at),
  outcomeAt: isoOrNull(t.outcome_at),
});
