import { metadataDocument, signMetadata, tufExpires } from '@fleetkey/crypto';
import { TUF_SPEC_VERSION, type SnapshotSigned, type TargetsSigned, type TimestampSigned } from '@fleetkey/protocol';
import type { Clock } from '../../context/clock.js';
import type { Store } from '../../store/open-store.js';
import type { DirectorDeviceRow } from '../../store/schema.js';
import type { DesiredReleases } from './desired-releases.js';
import type { Lifetimes } from './image-repository.js';
import type { OnlineKeys } from './online-keys.js';

/**
 * The Uptane director: per-device targets metadata listing only what THAT device must install
 * (its current name's desired release), each target's `custom` naming the device, the name, the
 * release, its version and a counter. Timestamp, snapshot and targets are signed together per
 * device, version = counter, bumped on every re-signing (assignment changed, name moved, half the
 * lifetime gone), so a device can refuse any older document. Only the latest version is served.
 */
export class Director {
  constructor(
    private readonly store: Store,
    private readonly keys: OnlineKeys,
    private readonly desired: DesiredReleases,
    private readonly clock: Clock,
    private readonly lifetimes: Lifetimes,
  ) {}

  /** The device's current documents, re-signed first when due. */
  async documents(deviceId: string): Promise<DirectorDeviceRow> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = this.clock.now();
      const row = await this.store.db.selectFrom('director_devices').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
      const want = await this.desired.forDevice(deviceId);
      const device = await this.store.db.selectFrom('devices').select('model').where('id', '=', deviceId).executeTakeFirst();
      // A release for another model is never offered to this device (a wrong image bricks it).
      const release = want !== null && (device?.model == null || device.model === want.release.model) ? want.release : null;
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
}
