import { metadataDocument, signMetadata, tufExpires } from '@fleetkey/crypto';
import { TUF_SPEC_VERSION, type SnapshotSigned, type TargetsSigned, type TimestampSigned } from '@fleetkey/protocol';
import type { Clock } from '../../context/clock.js';
import type { Store } from '../../store/open-store.js';
import type { DirectorDeviceRow, ReleaseRow } from '../../store/schema.js';
import type { Lifetimes } from './image-repository.js';
import type { OnlineKeys } from './online-keys.js';

/**
 * The Uptane director: per-device targets metadata listing only what THAT device must install
 * (its current name's desired release), each target's `custom` naming the device, the name, the
 * release, its version and a counter. Timestamp, snapshot and targets are signed together per
 * device, version = counter, bumped on every re-signing (assignment changed, name moved, half the
 * lifetime gone), so a device can refuse any older document. The latest timestamp is served, and
 * the snapshot and targets of the latest two generations (a device reading N while N+1 is signed
 * still finds N: TUF 1.0 §5.7.3), so a check racing a re-signing completes with the older
 * assignment and the next check sees the new one.
 */
export class Director {
  constructor(
    private readonly store: Store,
    private readonly keys: OnlineKeys,
    private readonly clock: Clock,
    private readonly lifetimes: Lifetimes,
  ) {}

  /** The device's current documents, re-signed first when due. */
  async documents(deviceId: string): Promise<DirectorDeviceRow> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = this.clock.now();
      const { row, want, model } = await this.state(deviceId);
      // A release for another model is never offered to this device (a wrong image bricks it).
      const release = want !== null && (model === null || model === want.release.model) ? want.release : null;
      const fresh =
        row !== undefined &&
        row.release_id === (release?.id ?? null) &&
        row.name_id === (want?.nameId ?? null) &&
        row.expires_at - now > this.lifetimes.directorMs / 2;
      if (fresh) return row;
      const counter = (row?.counter ?? 0) + 1;
      const expires = tufExpires(now + this.lifetimes.directorMs);
      const targets: TargetsSigned = {
        _type: 'targets',
        spec_version: TUF_SPEC_VERSION,
        version: counter,
        expires,
        targets:
          release === null || want === null
            ? {}
            : {
                [release.target_name]: {
                  length: release.length,
                  hashes: { sha256: release.sha256 },
                  custom: { deviceId, name: want.name, releaseId: release.id, version: release.version, counter, ...(release.min_version === null ? {} : { minVersion: release.min_version }) },
                },
              },
      };
      const snapshot: SnapshotSigned = { _type: 'snapshot', spec_version: TUF_SPEC_VERSION, version: counter, expires, meta: { 'targets.json': { version: counter } } };
      const timestamp: TimestampSigned = { _type: 'timestamp', spec_version: TUF_SPEC_VERSION, version: counter, expires, meta: { 'snapshot.json': { version: counter } } };
      const next: DirectorDeviceRow = {
        device_id: deviceId,
        counter,
        name_id: want?.nameId ?? null,
        release_id: release?.id ?? null,
        targets_body: metadataDocument(await signMetadata(targets, [this.keys.get('director', 'targets').signer])),
        snapshot_body: metadataDocument(await signMetadata(snapshot, [this.keys.get('director', 'snapshot').signer])),
        timestamp_body: metadataDocument(await signMetadata(timestamp, [this.keys.get('director', 'timestamp').signer])),
        expires_at: Date.parse(expires),
        signed_at: now,
        prev_counter: row?.counter ?? null,
        prev_snapshot_body: row?.snapshot_body ?? null,
        prev_targets_body: row?.targets_body ?? null,
      };
      // Optimistic: a concurrent check of the same device that signed first wins; we re-read.
      if (row === undefined) {
        const r = await this.store.db.insertInto('director_devices').values(next).onConflict((oc) => oc.column('device_id').doNothing()).executeTakeFirst();
        if (Number(r.numInsertedOrUpdatedRows ?? 0n) === 1) return next;
      } else {
        const r = await this.store.db.updateTable('director_devices').set(next).where('device_id', '=', deviceId).where('counter', '=', row.counter).executeTakeFirst();
        if (Number(r.numUpdatedRows) === 1) return next;
      }
    }
    throw new Error(`director documents for ${deviceId} kept changing`);
  }

  /**
   * One round trip for a check: the device's stored director documents, its current name's
   * desired release and its model (device → open binding → desired_releases → releases).
   */
  private async state(deviceId: string): Promise<{ row: DirectorDeviceRow | undefined; want: { nameId: string; name: string; release: ReleaseRow } | null; model: string | null }> {
    const r = await this.store.db
      .selectFrom('devices')
      .leftJoin('director_devices', 'director_devices.device_id', 'devices.id')
      .leftJoin('bindings', (j) => j.onRef('bindings.device_id', '=', 'devices.id').on('bindings.valid_to', 'is', null))
      .leftJoin('names', 'names.id', 'bindings.name_id')
      .leftJoin('desired_releases', 'desired_releases.name_id', 'bindings.name_id')
      .leftJoin('releases', 'releases.id', 'desired_releases.release_id')
      .select([
        'devices.model as model',
        'director_devices.device_id as d_device',
        'director_devices.counter as d_counter',
        'director_devices.name_id as d_name_id',
        'director_devices.release_id as d_release_id',
        'director_devices.timestamp_body as d_ts',
        'director_devices.snapshot_body as d_snap',
        'director_devices.targets_body as d_targets',
        'director_devices.expires_at as d_expires',
        'director_devices.signed_at as d_signed',
        'director_devices.prev_counter as d_prev_counter',
        'director_devices.prev_snapshot_body as d_prev_snap',
        'director_devices.prev_targets_body as d_prev_targets',
        'names.id as n_id',
        'names.name as n_name',
        'releases.id as r_id',
        'releases.model as r_model',
        'releases.version as r_version',
        'releases.min_version as r_min',
        'releases.target_name as r_target',
        'releases.sha256 as r_sha',
        'releases.length as r_length',
        'releases.signed_by as r_signed_by',
        'releases.targets_version as r_tv',
        'releases.created_at as r_created_at',
        'releases.created_by as r_created_by',
      ])
      .where('devices.id', '=', deviceId)
      .executeTakeFirst();
    if (r === undefined) return { row: undefined, want: null, model: null };
    const row: DirectorDeviceRow | undefined =
      r.d_device === null
        ? undefined
        : { device_id: r.d_device, counter: Number(r.d_counter), name_id: r.d_name_id, release_id: r.d_release_id, timestamp_body: r.d_ts!, snapshot_body: r.d_snap!, targets_body: r.d_targets!, expires_at: Number(r.d_expires), signed_at: Number(r.d_signed), prev_counter: r.d_prev_counter === null ? null : Number(r.d_prev_counter), prev_snapshot_body: r.d_prev_snap, prev_targets_body: r.d_prev_targets };
    const want =
      r.r_id === null || r.n_id === null
        ? null
        : {
            nameId: r.n_id,
            name: r.n_name!,
            release: { id: r.r_id, model: r.r_model!, version: r.r_version!, min_version: r.r_min, target_name: r.r_target!, sha256: r.r_sha!, length: Number(r.r_length), signed_by: r.r_signed_by!, targets_version: Number(r.r_tv), created_at: Number(r.r_created_at), created_by: r.r_created_by! },
          };
    return { row, want, model: r.model };
  }
}
