import { FleetkeyError } from '@fleetkey/protocol';
import { iso } from '../../context/clock.js';
import type { OpContext } from '../../context/op-context.js';
import type { UnitOfWork, Work } from '../../context/unit-of-work.js';
import type { Store, Tx } from '../../store/open-store.js';
import type { DesiredReleaseRow, ReleaseRow } from '../../store/schema.js';
import type { NameService } from '../registry/name-service.js';

type Db = Tx | Store['db'];

export interface DesiredView {
  name: string;
  nameId: string;
  releaseId: string;
  source: string;
  rolloutId: string | null;
  updatedAt: string;
}

export interface DeviceDesire {
  readonly nameId: string;
  readonly name: string;
  readonly release: ReleaseRow;
  readonly desired: DesiredReleaseRow;
}

export interface SetDesired {
  readonly source: 'operator' | 'rollout';
  readonly rolloutId?: string | null;
}

/**
 * The ONE place that says which release a NAME should run (desired_releases). Bound to names,
 * not devices: a device that replaces another under a name converges on the name's release,
 * because the director reads device → current name → desired release at every check.
 * The rollout engine calls setInWork/clearInWork inside its own unit of work; operators go
 * through assign/unassign (audited, `release.assigned` / `release.unassigned` events).
 */
export class DesiredReleases {
  constructor(
    private readonly store: Store,
    private readonly uow: UnitOfWork,
    private readonly names: NameService,
  ) {}

  /** Operator assignment (`fleetkey release assign --name N --release R`). */
  async assign(ctx: OpContext, name: string, releaseId: string): Promise<DesiredView> {
    return this.uow.run(ctx, { action: 'release.assign', subject: `name:${name}` }, async (w) => {
      const row = await this.names.resolve(w.tx, name, true);
      await this.setInWork(w, row.id, releaseId, { source: 'operator' });
      const d = await w.tx.selectFrom('desired_releases').selectAll().where('name_id', '=', row.id).executeTakeFirstOrThrow();
      return view(d, row.name);
    });
  }

  async unassign(ctx: OpContext, name: string): Promise<void> {
    await this.uow.run(ctx, { action: 'release.unassign', subject: `name:${name}` }, async (w) => {
      const row = await this.names.resolve(w.tx, name, true);
      await this.clearInWork(w, row.id);
    });
  }

  /**
   * Sets the name's desired release inside the caller's unit of work. Refuses a release for
   * another model than the device currently bound to the name (when the device has a model).
   */
  async setInWork(w: Work, nameId: string, releaseId: string, how: SetDesired): Promise<void> {
    const release = await w.tx.selectFrom('releases').selectAll().where('id', '=', releaseId).executeTakeFirst();
    if (release === undefined) throw new FleetkeyError('RELEASE_NOT_FOUND', { detail: releaseId });
    const device = await w.tx
      .selectFrom('bindings')
      .innerJoin('devices', 'devices.id', 'bindings.device_id')
      .select(['devices.id', 'devices.model'])
      .where('bindings.name_id', '=', nameId)
      .where('bindings.valid_to', 'is', null)
      .executeTakeFirst();
    if (device?.model != null && device.model !== release.model) {
      throw new FleetkeyError('RELEASE_MODEL_MISMATCH', { detail: `device ${device.id} is ${device.model}, release ${release.id} is for ${release.model}` });
    }
    const row: DesiredReleaseRow = {
      name_id: nameId,
      release_id: releaseId,
      source: how.source,
      rollout_id: how.rolloutId ?? null,
      updated_at: w.now,
      updated_by: w.ctx.actor.label,
    };
    const prior = await w.tx.selectFrom('desired_releases').select('release_id').where('name_id', '=', nameId).executeTakeFirst();
    if (prior === undefined) await w.tx.insertInto('desired_releases').values(row).execute();
    else await w.tx.updateTable('desired_releases').set(row).where('name_id', '=', nameId).execute();
    const name = await w.tx.selectFrom('names').select('name').where('id', '=', nameId).executeTakeFirstOrThrow();
    w.note({ releaseId, version: release.version, source: how.source, ...(prior === undefined ? {} : { previousReleaseId: prior.release_id }) });
    await w.emit('release.assigned', `name:${name.name}`, {
      name: name.name,
      nameId,
      releaseId,
      version: release.version,
      model: release.model,
      source: how.source,
      rolloutId: how.rolloutId ?? null,
      previousReleaseId: prior?.release_id ?? null,
    });
  }

  async clearInWork(w: Work, nameId: string): Promise<void> {
    const prior = await w.tx.selectFrom('desired_releases').select('release_id').where('name_id', '=', nameId).executeTakeFirst();
    if (prior === undefined) return;
    await w.tx.deleteFrom('desired_releases').where('name_id', '=', nameId).execute();
    const name = await w.tx.selectFrom('names').select('name').where('id', '=', nameId).executeTakeFirstOrThrow();
    w.note({ previousReleaseId: prior.release_id });
    await w.emit('release.unassigned', `name:${name.name}`, { name: name.name, nameId, previousReleaseId: prior.release_id });
  }

  async forName(db: Db, nameId: string): Promise<DesiredReleaseRow | null> {
    return (await db.selectFrom('desired_releases').selectAll().where('name_id', '=', nameId).executeTakeFirst()) ?? null;
  }

  /** What the device must run now: its current name's desired release, or null. */
  async forDevice(deviceId: string, db: Db = this.store.db): Promise<DeviceDesire | null> {
    const r = await db
      .selectFrom('bindings')
      .innerJoin('names', 'names.id', 'bindings.name_id')
      .innerJoin('desired_releases', 'desired_releases.name_id', 'bindings.name_id')
      .innerJoin('releases', 'releases.id', 'desired_releases.release_id')
      .selectAll('releases')
      .select([
        'names.id as n_id',
        'names.name as n_name',
        'desired_releases.source as d_source',
        'desired_releases.rollout_id as d_rollout',
        'desired_releases.updated_at as d_updated_at',
        'desired_releases.updated_by as d_updated_by',
      ])
      .where('bindings.device_id', '=', deviceId)
      .where('bindings.valid_to', 'is', null)
      .executeTakeFirst();
    if (r === undefined) return null;
    const { n_id, n_name, d_source, d_rollout, d_updated_at, d_updated_by, ...release } = r;
    return {
      nameId: n_id,
      name: n_name,
      release: { ...release, length: Number(release.length), created_at: Number(release.created_at) },
      desired: { name_id: n_id, release_id: release.id, source: d_source, rollout_id: d_rollout, updated_at: Number(d_updated_at), updated_by: d_updated_by },
    };
  }

  async list(limit = 1000): Promise<DesiredView[]> {
    const rows = await this.store.db
      .selectFrom('desired_releases')
      .innerJoin('names', 'names.id', 'desired_releases.name_id')
      .selectAll('desired_releases')
      .select('names.name as name')
      .orderBy('names.name')
      .limit(limit)
      .execute();
    return rows.map((r) => view(r, r.name));
  }
}

function view(d: DesiredReleaseRow, name: string): DesiredView {
  return { name, nameId: d.name_id, releaseId: d.release_id, source: d.source, rolloutId: d.rollout_id, updatedAt: iso(Number(d.updated_at)) };
}
