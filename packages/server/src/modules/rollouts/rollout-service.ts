import { randomUUID } from 'node:crypto';
import { FleetkeyError, parseDuration, type CreateRolloutBody, type RolloutTargetView, type RolloutView, type TargetStatus } from '@fleetkey/protocol';
import type { OpContext } from '../../context/op-context.js';
import type { UnitOfWork, Work } from '../../context/unit-of-work.js';
import type { Store, Tx } from '../../store/open-store.js';
import type { RolloutRow, RolloutTargetRow } from '../../store/schema.js';
import type { DesiredReleasesPort } from './desired-releases.js';
import { BP, checkWaves, parseHealthRule, parseSelector, selects, waveSizes } from './rules.js';
import { rolloutView, targetView, waveCounts } from './rollout-views.js';

/** A rollout that still assigns, or may again: a name belongs to at most one of them. */
export const ACTIVE = ['running', 'paused'] as const;
const CHUNK = 500;

/**
 * The operator's side of rollouts: create (selection resolved to NAMES once, split into waves),
 * read, pause, resume, abort, roll back. Each mutation is one unit of work (change + audit +
 * events); the engine (rollout-engine.ts) moves running rollouts forward from the same rows.
 */
export class RolloutService {
  /** Set by the module: wake the engine after a change an operator made. */
  onChange: () => void = () => {};

  constructor(
    private readonly store: Store,
    private readonly uow: UnitOfWork,
    private readonly desired: DesiredReleasesPort,
  ) {}

  async create(ctx: OpContext, body: CreateRolloutBody): Promise<RolloutView> {
    const id = randomUUID();
    const view = await this.uow.run(ctx, { action: 'rollout.create', subject: `rollout:${id}` }, async (w) => {
      const sel = parseSelector(body.select);
      if (sel === null) throw new FleetkeyError('ROLLOUT_SELECTOR_INVALID', { detail: body.select });
      const bad = checkWaves(body.waves);
      if (bad !== null) throw new FleetkeyError('ROLLOUT_WAVES_INVALID', { detail: bad });
      if (body.healthRule !== undefined && parseHealthRule(body.healthRule) === null) throw new FleetkeyError('ROLLOUT_HEALTH_RULE_INVALID', { detail: body.healthRule });
      const timeoutMs = parseDuration(body.timeout);
      if (timeoutMs === undefined || timeoutMs === null || timeoutMs <= 0) throw new FleetkeyError('VALIDATION_FAILED', { detail: `timeout ${body.timeout}` });
      if (!(await this.desired.releaseExists(w.tx, body.release))) throw new FleetkeyError('ROLLOUT_RELEASE_NOT_FOUND', { detail: body.release });

      // Names, not devices: a replacement bound to a selected name later is still this rollout's.
      const names = (await w.tx.selectFrom('names').select(['id', 'name', 'tags']).execute())
        .filter((n) => selects(sel, n.name, JSON.parse(n.tags) as Record<string, unknown>))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      if (names.length === 0) throw new FleetkeyError('ROLLOUT_SELECTION_EMPTY', { detail: body.select });
      for (let i = 0; i < names.length; i += CHUNK) {
        const busy = await w.tx
          .selectFrom('rollout_targets as t')
          .innerJoin('rollouts as r', 'r.id', 't.rollout_id')
          .select(['t.name', 'r.id'])
          .where('r.status', 'in', [...ACTIVE])
          .where('t.name_id', 'in', names.slice(i, i + CHUNK).map((n) => n.id))
          .executeTakeFirst();
        if (busy !== undefined) throw new FleetkeyError('ROLLOUT_NAME_BUSY', { detail: `${busy.name} in rollout ${busy.id}` });
      }

      const sizes = waveSizes(names.length, body.waves);
      const abortBp = Math.round(body.abortFailureRatio * BP);
      const row: RolloutRow = {
        id,
        release_id: body.release,
        selector: body.select,
        waves: JSON.stringify(body.waves),
        wave_sizes: JSON.stringify(sizes),
        max_per_minute: body.maxPerMinute,
        abort_failure_bp: abortBp,
        success_bp: body.successRatio === undefined ? BP - abortBp : Math.round(body.successRatio * BP),
        min_executed: body.minExecuted,
        timeout_ms: timeoutMs,
        health_rule: body.healthRule ?? null,
        status: 'running',
        current_wave: 0,
        abort_reason: null,
        created_by: ctx.actor.label,
        created_at: w.now,
        updated_at: w.now,
      };
      await w.tx.insertInto('rollouts').values(row).execute();
      const targets: RolloutTargetRow[] = [];
      let wave = 0;
      let end = sizes[0] ?? 0;
      for (const [position, n] of names.entries()) {
        while (position >= end && wave < sizes.length - 1) end += sizes[++wave] ?? 0;
        targets.push({ rollout_id: id, name_id: n.id, name: n.name, wave, position, status: 'pending', previous_release_id: null, device_id: null, code: null, assigned_at: null, outcome_at: null });
      }
      for (let i = 0; i < targets.length; i += CHUNK) await w.tx.insertInto('rollout_targets').values(targets.slice(i, i + CHUNK)).execute();
      w.note({ releaseId: body.release, select: body.select, names: names.length, waveSizes: sizes });
      await w.emit('rollout.created', `rollout:${id}`, { rolloutId: id, releaseId: body.release, select: body.select, names: names.length, waveSizes: sizes });
      await w.emit('rollout.wave_started', `rollout:${id}`, { rolloutId: id, wave: 0, names: sizes[0] ?? 0 });
      return rolloutView(row, (await waveCounts(w.tx, id, sizes.length)).totals);
    });
    this.onChange();
    return view;
  }

  async list(limit: number): Promise<RolloutView[]> {
    const rows = await this.store.db.selectFrom('rollouts').selectAll().orderBy('created_at', 'desc').limit(limit).execute();
    const out: RolloutView[] = [];
    for (const r of rows) out.push(rolloutView(r, (await waveCounts(this.store.db, r.id, (JSON.parse(r.wave_sizes) as number[]).length)).totals));
    return out;
  }

  async show(id: string): Promise<RolloutView> {
    const r = await this.store.db.selectFrom('rollouts').selectAll().where('id', '=', id).executeTakeFirst();
    if (r === undefined) throw new FleetkeyError('ROLLOUT_NOT_FOUND', { detail: id });
    return rolloutView(r, (await waveCounts(this.store.db, r.id, (JSON.parse(r.wave_sizes) as number[]).length)).totals);
  }

  async targets(id: string, status: TargetStatus | undefined, limit: number): Promise<RolloutTargetView[]> {
    await this.show(id);
    let q = this.store.db.selectFrom('rollout_targets').selectAll().where('rollout_id', '=', id);
    if (status !== undefined) q = q.where('status', '=', status);
    return (await q.orderBy('position').limit(limit).execute()).map(targetView);
  }

  pause(ctx: OpContext, id: string, reason: string | undefined): Promise<RolloutView> {
    return this.transition(ctx, id, 'rollout.pause', ['running'], 'paused', reason, async (w) => {
      await w.emit('rollout.paused', `rollout:${id}`, { rolloutId: id, reason: reason ?? null });
    });
  }

  resume(ctx: OpContext, id: string): Promise<RolloutView> {
    return this.transition(ctx, id, 'rollout.resume', ['paused'], 'running', undefined, async (w) => {
      await w.emit('rollout.resumed', `rollout:${id}`, { rolloutId: id });
    });
  }

  abort(ctx: OpContext, id: string, reason: string | undefined): Promise<RolloutView> {
    const why = `operator: ${reason ?? 'no reason given'}`;
    return this.transition(ctx, id, 'rollout.abort', ACTIVE, 'aborted', why, async (w, row) => {
      await abortInWork(w, row, why, 'operator');
    });
  }

  /**
   * Stops the rollout and gives every name it assigned its previous release back (or no desired
   * release, if it had none) — unless something else assigned the name since: the rollout only
   * undoes its own assignment.
   */
  rollback(ctx: OpContext, id: string, reason: string | undefined): Promise<RolloutView> {
    return this.transition(ctx, id, 'rollout.rollback', ['running', 'paused', 'aborted', 'completed'], 'rolled_back', reason, async (w, row) => {
      const assigned = await w.tx.selectFrom('rollout_targets').select(['name_id', 'previous_release_id']).where('rollout_id', '=', id).where('assigned_at', 'is not', null).execute();
      let restored = 0;
      let skipped = 0;
      for (const t of assigned) {
        // Only undo our own assignment (a later operator or rollout assignment stands), and a name
        // that already ran this release before the rollout keeps it.
        if ((await this.desired.forName(w.tx, t.name_id)) !== row.release_id || t.previous_release_id === row.release_id) {
          skipped++;
          continue;
        }
        try {
          if (t.previous_release_id === null) await this.desired.clear(w, t.name_id);
          else await this.desired.set(w, t.name_id, t.previous_release_id, id);
          restored++;
        } catch (e) {
          // Refused for this name before anything was written (the name's device is now another
          // model): the name keeps what it has, the others are restored.
          if (!(e instanceof FleetkeyError)) throw e;
          skipped++;
        }
      }
      await w.tx.updateTable('rollout_targets').set({ status: 'cancelled', outcome_at: w.now }).where('rollout_id', '=', id).where('status', 'in', ['pending', 'assigned']).execute();
      w.note({ restored, skipped });
      await w.emit('rollout.rolled_back', `rollout:${id}`, { rolloutId: id, releaseId: row.release_id, restored, skipped, reason: reason ?? null });
    });
  }

  private async transition(
    ctx: OpContext,
    id: string,
    action: string,
    from: readonly string[],
    to: string,
    reason: string | undefined,
    then: (w: Work, row: RolloutRow) => Promise<void>,
  ): Promise<RolloutView> {
    const view = await this.uow.run(ctx, { action, subject: `rollout:${id}` }, async (w) => {
      const row = await lockRollout(w.tx, id);
      if (row === undefined) throw new FleetkeyError('ROLLOUT_NOT_FOUND', { detail: id });
      if (!from.includes(row.status)) throw new FleetkeyError('ROLLOUT_STATE_INVALID', { detail: `${row.status} → ${to}` });
      const next: RolloutRow = { ...row, status: to, updated_at: w.now, abort_reason: to === 'aborted' ? (reason ?? null) : row.abort_reason };
      await w.tx.updateTable('rollouts').set({ status: next.status, updated_at: next.updated_at, abort_reason: next.abort_reason }).where('id', '=', id).execute();
      w.note({ from: row.status, to, ...(reason === undefined ? {} : { reason }) });
      await then(w, next);
      return rolloutView(next, (await waveCounts(w.tx, id, (JSON.parse(row.wave_sizes) as number[]).length)).totals);
    });
    this.onChange();
    return view;
  }
}

/**
 * Reads a rollout holding its row lock on PostgreSQL (SQLite serialises writers anyway), so an
 * operator's pause and the engine's next assignment batch cannot interleave.
 */
export async function lockRollout(tx: Tx, id: string): Promise<RolloutRow | undefined> {
  await tx.updateTable('rollouts').set({ id }).where('id', '=', id).execute();
  return tx.selectFrom('rollouts').selectAll().where('id', '=', id).executeTakeFirst();
}

/** What every abort does, by the operator or by the abort rule: no name still pending is ever assigned. */
export async function abortInWork(w: Work, row: RolloutRow, reason: string, by: 'operator' | 'rule', extra: Record<string, unknown> = {}): Promise<void> {
  const cancelled = await w.tx.updateTable('rollout_targets').set({ status: 'cancelled', outcome_at: w.now }).where('rollout_id', '=', row.id).where('status', '=', 'pending').executeTakeFirst();
  w.note({ cancelled: Number(cancelled.numUpdatedRows) });
  await w.emit('rollout.aborted', `rollout:${row.id}`, { rolloutId: row.id, releaseId: row.release_id, by, reason, cancelled: Number(cancelled.numUpdatedRows), ...extra });
}
