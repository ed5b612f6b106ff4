import { FleetkeyError } from '@fleetkey/protocol';
import type { Logger } from 'pino';
import type { Clock } from '../../context/clock.js';
import { systemContext } from '../../context/op-context.js';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import type { Store } from '../../store/open-store.js';
import type { RolloutRow } from '../../store/schema.js';
import { storedPayload } from '../telemetry/stored-payload.js';
import type { DesiredReleasesPort } from './desired-releases.js';
import { ACTIVE, abortInWork, lockRollout } from './rollout-service.js';
import { waveCounts } from './rollout-views.js';
import { decide, healthVerdict, parseHealthRule, type Decision } from './rules.js';

/** Update failure codes a device retries by itself (the SDK's fetch errors): never a rollout outcome. */
const TRANSIENT_CODES: ReadonlySet<string> = new Set(['UPDATE_FETCH_FAILED']);

/** `device.update_reported` as the gateway emits it (issue 12 contract). */
export interface UpdateReport {
  readonly deviceId: string;
  readonly nameId: string | null;
  readonly releaseId: string;
  readonly version?: string;
  readonly phase: string;
  readonly code?: string | null;
}

const CTX = systemContext('rollouts');
/** Steps one rollout may take in one tick (start a wave, then assign its first batch, ...). */
const MAX_STEPS = 8;

/**
 * Moves running rollouts forward from the store (the truth: a restarted server resumes where the
 * rows say). One tick at a time per process: timeouts, health verdicts, then `decide` (rules.ts)
 * and its one action, each in its own unit of work guarded by the rollout's state.
 */
export class RolloutEngine {
  #timer: NodeJS.Timeout | null = null;
  #busy: Promise<void> = Promise.resolve();
  #again = false;
  #ticking = false;
  #stopped = false;

  constructor(
    private readonly store: Store,
    private readonly uow: UnitOfWork,
    private readonly desired: DesiredReleasesPort,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly tickMs: number,
  ) {}

  start(): void {
    this.#stopped = false;
    this.#timer = setInterval(() => this.kick(), this.tickMs);
    this.#timer.unref();
    this.kick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#busy;
  }

  /** Runs a tick now, or right after the one in progress. */
  kick(): void {
    if (this.#stopped) return;
    if (this.#ticking) {
      this.#again = true;
      return;
    }
    this.#ticking = true;
    this.#busy = (async () => {
      do {
        this.#again = false;
        try {
          await this.tick();
        } catch (e) {
          this.logger.error({ err: e }, 'rollout tick failed');
        }
      } while (this.#again && !this.#stopped);
      this.#ticking = false;
    })();
  }

  /** Waits for the tick in progress (tests, shutdown). */
  idle(): Promise<void> {
    return this.#busy;
  }

  async tick(): Promise<void> {
    const active = await this.store.db.selectFrom('rollouts').selectAll().where('status', 'in', [...ACTIVE]).orderBy('created_at').execute();
    for (const r of active) {
      if (this.#stopped) return;
      await this.reconcile(r);
      await this.expire(r);
      if (r.health_rule !== null) await this.checkHealth(r);
      for (let i = 0; i < MAX_STEPS; i++) {
        const d = await this.decision(r.id);
        if (d === null || d.kind === 'wait') break;
        if (!(await this.act(r.id, d))) break;
      }
    }
  }

  /**
   * A device's report, as the gateway stored it. Only a terminal phase of the release the name's
   * active target was assigned counts, once: the first `installed` or `failed` wins.
   */
  async onReport(report: UpdateReport): Promise<void> {
    if (report.nameId === null || (report.phase !== 'installed' && report.phase !== 'failed')) return;
    // A fetch that failed (network, HTTP status) is not the device's verdict on the release: it
    // checks again at its next interval. Counting it would make one dropped connection the
    // name's final outcome; a device that never gets through is `timed_out` instead.
    if (report.phase === 'failed' && TRANSIENT_CODES.has(report.code ?? '')) return;
    const target = await this.store.db
      .selectFrom('rollout_targets as t')
      .innerJoin('rollouts as r', 'r.id', 't.rollout_id')
      .select(['t.rollout_id', 't.name', 't.name_id', 'r.release_id'])
      .where('t.name_id', '=', report.nameId)
      .where('t.status', '=', 'assigned')
      .where('r.release_id', '=', report.releaseId)
      .executeTakeFirst();
    if (target === undefined) return;
    const status = report.phase === 'installed' ? 'installed' : 'failed';
    const code = status === 'failed' ? (report.code ?? 'UNKNOWN').slice(0, 64) : null;
    const changed = await this.uow.run(CTX, { action: 'rollout.device_outcome', subject: `rollout:${target.rollout_id}` }, async (w) => {
      const u = await w.tx
        .updateTable('rollout_targets')
        .set({ status, code, device_id: report.deviceId, outcome_at: w.now })
        .where('rollout_id', '=', target.rollout_id)
        .where('name_id', '=', target.name_id)
        .where('status', '=', 'assigned')
        .executeTakeFirst();
      if (Number(u.numUpdatedRows) === 0) return false;
      w.note({ name: target.name, deviceId: report.deviceId, outcome: status, ...(code === null ? {} : { code }) });
      await w.emit('rollout.device_outcome', `rollout:${target.rollout_id}`, {
        rolloutId: target.rollout_id,
        releaseId: target.release_id,
        name: target.name,
        nameId: target.name_id,
        deviceId: report.deviceId,
        outcome: status,
        code,
      });
      return true;
    });
    // A failure may trip the abort rule: decide now rather than at the next tick.
    if (changed) this.kick();
  }

  /**
   * The store is the truth: a report the gateway stored whose bus event this process never saw
   * (a crash between its commit and the event, another server node) is read back from
   * `device_update_reports` — terminal reports of the rollout's release for a name still
   * assigned, received since its assignment, oldest first (the first one wins, as live).
   */
  private async reconcile(r: RolloutRow): Promise<void> {
    const missed = await this.store.db
      .selectFrom('rollout_targets as t')
      .innerJoin('device_update_reports as d', (j) => j.onRef('d.name_id', '=', 't.name_id').onRef('d.received_at', '>=', 't.assigned_at'))
      .select(['d.device_id', 'd.name_id', 'd.phase', 'd.code', 'd.version'])
      .where('t.rollout_id', '=', r.id)
      .where('t.status', '=', 'assigned')
      .where('d.release_id', '=', r.release_id)
      .where('d.phase', 'in', ['installed', 'failed'])
      .orderBy('d.received_at')
      .limit(1000)
      .execute();
    for (const m of missed) {
      await this.onReport({ deviceId: m.device_id, nameId: m.name_id, releaseId: r.release_id, version: m.version, phase: m.phase, code: m.code });
    }
  }

  /** AWS IoT Jobs in-progress timeout: a name assigned longer than the timeout without `installed` failed (TIMED_OUT). */
  private async expire(r: RolloutRow): Promise<void> {
    const now = this.clock.now();
    const late = await this.store.db
      .selectFrom('rollout_targets')
      .select(['name_id', 'name'])
      .where('rollout_id', '=', r.id)
      .where('status', '=', 'assigned')
      .where('assigned_at', '<=', now - r.timeout_ms)
      .orderBy('position')
      .limit(1000)
      .execute();
    if (late.length === 0) return;
    await this.uow.run(CTX, { action: 'rollout.device_timeout', subject: `rollout:${r.id}` }, async (w) => {
      let n = 0;
      for (const t of late) {
        const u = await w.tx
          .updateTable('rollout_targets')
          .set({ status: 'timed_out', code: 'ROLLOUT_TIMED_OUT', outcome_at: w.now })
          .where('rollout_id', '=', r.id)
          .where('name_id', '=', t.name_id)
          .where('status', '=', 'assigned')
          .executeTakeFirst();
        if (Number(u.numUpdatedRows) === 0) continue;
        n++;
        await w.emit('rollout.device_outcome', `rollout:${r.id}`, { rolloutId: r.id, releaseId: r.release_id, name: t.name, nameId: t.name_id, deviceId: null, outcome: 'timed_out', code: 'ROLLOUT_TIMED_OUT' });
      }
      w.note({ timedOut: n, timeoutMs: r.timeout_ms, names: late.slice(0, 20).map((t) => t.name) });
    });
  }

  /**
   * The health rule, judged on the name's diagnostics received after its install: the latest
   * message that says something decides (healthy or unhealthy). A name whose diagnostics say
   * nothing within the timeout after its install did not come back: timed out.
   */
  private async checkHealth(r: RolloutRow): Promise<void> {
    const rule = parseHealthRule(r.health_rule ?? '');
    if (rule === null) return;
    const now = this.clock.now();
    const watched = await this.store.db
      .selectFrom('rollout_targets')
      .select(['name_id', 'name', 'device_id', 'outcome_at'])
      .where('rollout_id', '=', r.id)
      .where('status', '=', 'installed')
      .orderBy('position')
      .limit(1000)
      .execute();
    const verdicts: { name_id: string; name: string; device_id: string | null; status: 'healthy' | 'unhealthy' | 'timed_out' }[] = [];
    for (const t of watched) {
      const since = t.outcome_at ?? now;
      const msgs = await this.store.db
        .selectFrom('diagnostics')
        .select(['payload'])
        .where('name_id', '=', t.name_id)
        .where('received_at', '>=', since)
        .orderBy('received_at', 'desc')
        .limit(20)
        .execute();
      let status: 'healthy' | 'unhealthy' | 'timed_out' | null = null;
      for (const m of msgs) {
        const v = healthVerdict(rule, storedPayload(m.payload));
        if (v === null) continue;
        status = v ? 'healthy' : 'unhealthy';
        break;
      }
      if (status === null && since <= now - r.timeout_ms) status = 'timed_out';
      if (status !== null) verdicts.push({ ...t, status });
    }
    if (verdicts.length === 0) return;
    const code = { healthy: null, unhealthy: 'ROLLOUT_HEALTH_RULE', timed_out: 'ROLLOUT_TIMED_OUT' } as const;
    await this.uow.run(CTX, { action: 'rollout.device_health', subject: `rollout:${r.id}` }, async (w) => {
      for (const t of verdicts) {
        const u = await w.tx
          .updateTable('rollout_targets')
          .set({ status: t.status, code: code[t.status], outcome_at: w.now })
          .where('rollout_id', '=', r.id)
          .where('name_id', '=', t.name_id)
          .where('status', '=', 'installed')
          .executeTakeFirst();
        if (Number(u.numUpdatedRows) === 0) continue;
        await w.emit('rollout.device_outcome', `rollout:${r.id}`, { rolloutId: r.id, releaseId: r.release_id, name: t.name, nameId: t.name_id, deviceId: t.device_id, outcome: t.status, code: code[t.status] });
      }
      w.note({ rule: r.health_rule, healthy: verdicts.filter((v) => v.status === 'healthy').length, unhealthy: verdicts.filter((v) => v.status === 'unhealthy').map((v) => v.name).slice(0, 20), timedOut: verdicts.filter((v) => v.status === 'timed_out').length });
    });
  }

  private async decision(id: string): Promise<Decision | null> {
    const r = await this.store.db.selectFrom('rollouts').selectAll().where('id', '=', id).executeTakeFirst();
    if (r === undefined || !(ACTIVE as readonly string[]).includes(r.status)) return null;
    const sizes = JSON.parse(r.wave_sizes) as number[];
    const { perWave } = await waveCounts(this.store.db, id, sizes.length, r.health_rule !== null);
    const recent = await this.store.db
      .selectFrom('rollout_targets')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('rollout_id', '=', id)
      .where('assigned_at', '>', this.clock.now() - 60_000)
      .executeTakeFirstOrThrow();
    return decide({
      status: r.status,
      currentWave: r.current_wave,
      waveSizes: sizes,
      waves: perWave,
      minExecuted: r.min_executed,
      abortFailureBp: r.abort_failure_bp,
      successBp: r.success_bp,
      maxPerMinute: r.max_per_minute,
      assignedLastMinute: Number(recent.n),
    });
  }

  /** Applies one decision under the rollout's lock, only if the rollout is still where the decision saw it. */
  private act(id: string, d: Exclude<Decision, { kind: 'wait' }>): Promise<boolean> {
    return this.uow.run(CTX, { action: `rollout.${d.kind}`, subject: `rollout:${id}` }, async (w) => {
      const r = await lockRollout(w.tx, id);
      if (r === undefined || !(ACTIVE as readonly string[]).includes(r.status)) return false;
      switch (d.kind) {
        case 'abort': {
          await w.tx.updateTable('rollouts').set({ status: 'aborted', abort_reason: d.reason, updated_at: w.now }).where('id', '=', id).execute();
          w.note({ reason: d.reason, executed: d.executed, failures: d.failures });
          await abortInWork(w, r, d.reason, 'rule', { executed: d.executed, failures: d.failures });
          return false;
        }
        case 'complete': {
          if (r.status !== 'running') return false;
          await w.tx.updateTable('rollouts').set({ status: 'completed', updated_at: w.now }).where('id', '=', id).execute();
          await w.emit('rollout.completed', `rollout:${id}`, { rolloutId: id, releaseId: r.release_id });
          return false;
        }
        case 'start_wave': {
          if (r.status !== 'running' || r.current_wave !== d.wave - 1) return false;
          await w.tx.updateTable('rollouts').set({ current_wave: d.wave, updated_at: w.now }).where('id', '=', id).execute();
          const sizes = JSON.parse(r.wave_sizes) as number[];
          w.note({ wave: d.wave });
          await w.emit('rollout.wave_started', `rollout:${id}`, { rolloutId: id, wave: d.wave, names: sizes[d.wave] ?? 0 });
          return true;
        }
        case 'assign': {
          if (r.status !== 'running' || r.current_wave !== d.wave) return false;
          const batch = await w.tx
            .selectFrom('rollout_targets')
            .select(['name_id', 'name'])
            .where('rollout_id', '=', id)
            .where('wave', '=', d.wave)
            .where('status', '=', 'pending')
            .orderBy('position')
            .limit(d.count)
            .execute();
          let refused = 0;
          for (const t of batch) {
            const previous = await this.desired.forName(w.tx, t.name_id);
            try {
              await this.desired.set(w, t.name_id, r.release_id, id);
            } catch (e) {
              // Refused for this name before anything was written (e.g. another model): the name
              // failed (AWS IoT Jobs REJECTED), the others of the batch go on.
              if (!(e instanceof FleetkeyError)) throw e;
              refused++;
              await w.tx
                .updateTable('rollout_targets')
                .set({ status: 'failed', code: e.code, assigned_at: w.now, outcome_at: w.now, previous_release_id: previous })
                .where('rollout_id', '=', id)
                .where('name_id', '=', t.name_id)
                .execute();
              await w.emit('rollout.device_outcome', `rollout:${id}`, { rolloutId: id, releaseId: r.release_id, name: t.name, nameId: t.name_id, deviceId: null, outcome: 'failed', code: e.code });
              continue;
            }
            await w.tx
              .updateTable('rollout_targets')
              .set({ status: 'assigned', assigned_at: w.now, previous_release_id: previous })
              .where('rollout_id', '=', id)
              .where('name_id', '=', t.name_id)
              .execute();
          }
          if (refused > 0) w.note({ refused });
          w.note({ wave: d.wave, assigned: batch.length, names: batch.slice(0, 20).map((t) => t.name) });
          return batch.length > 0;
        }
      }
    });
  }
}
