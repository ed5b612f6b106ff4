import { randomUUID } from 'node:crypto';
import { compareSemver, FleetkeyError, type CreateReleaseBody, type Release } from '@fleetkey/protocol';
import { iso } from '../../context/clock.js';
import type { OpContext } from '../../context/op-context.js';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import { isUniqueViolation, type Store } from '../../store/open-store.js';
import type { ReleaseRow } from '../../store/schema.js';
import type { Readable } from 'node:stream';
import type { ArtifactStore, StoredArtifact } from './artifact-store.js';
import type { ImageRepository } from './image-repository.js';

export const releaseView = (r: ReleaseRow): Release => ({
  id: r.id,
  model: r.model,
  version: r.version,
  minVersion: r.min_version,
  targetName: r.target_name,
  sha256: r.sha256,
  length: Number(r.length),
  signedBy: r.signed_by.split(','),
  targetsVersion: r.targets_version,
  createdAt: iso(Number(r.created_at)),
  createdBy: r.created_by,
});

/**
 * Releases: one artifact for one model and version, admitted only together with the targets
 * metadata that lists it, signed by the customer's targets key(s) outside Fleetkey.
 */
export class ReleaseService {
  constructor(
    private readonly store: Store,
    private readonly uow: UnitOfWork,
    private readonly repo: ImageRepository,
    private readonly artifacts: ArtifactStore,
  ) {}

  /**
   * Streams an artifact into the content-addressed store, then audits it. The upload itself runs
   * outside any transaction (a slow uploader must not hold the store); a refusal is audited by
   * the HTTP layer like every other.
   */
  async uploadArtifact(ctx: OpContext, body: Readable, declared: number, sha256: string | undefined): Promise<StoredArtifact> {
    const stored = await this.artifacts.put(body, declared, sha256);
    await this.uow.run(ctx, { action: 'updates.artifact.upload', subject: `artifact:${stored.sha256}` }, async (w) => {
      w.note({ length: stored.length });
    });
    return stored;
  }

  async create(ctx: OpContext, body: CreateReleaseBody): Promise<Release> {
    return this.uow.run(ctx, { action: 'release.create', subject: `release:${body.model}@${body.version}` }, async (w) => {
      if (body.minVersion !== undefined && compareSemver(body.minVersion, body.version) > 0) {
        throw new FleetkeyError('RELEASE_VERSION_INVALID', { detail: `min version ${body.minVersion} above ${body.version}` });
      }
      const target = body.targets.signed.targets[body.targetName];
      if (target === undefined) throw new FleetkeyError('REPO_METADATA_INVALID', { detail: `targets metadata does not list ${body.targetName}` });
      const custom = target.custom as Record<string, unknown> | undefined;
      // The signed metadata says what the release is: the signer vouches for model and version too.
      if (custom?.['model'] !== body.model || custom['version'] !== body.version) {
        throw new FleetkeyError('REPO_METADATA_INVALID', { detail: `target ${body.targetName} custom must carry model ${body.model} and version ${body.version}` });
      }
      const clash = await w.tx
        .selectFrom('releases')
        .select('id')
        .where((eb) => eb.or([eb.and([eb('model', '=', body.model), eb('version', '=', body.version)]), eb('target_name', '=', body.targetName)]))
        .executeTakeFirst();
      if (clash !== undefined) throw new FleetkeyError('RELEASE_EXISTS', { detail: `${body.model}@${body.version} / ${body.targetName}` });
      const { signedBy } = await this.repo.submitTargetsInWork(w, body.targets);
      const row: ReleaseRow = {
        id: randomUUID(),
        model: body.model,
        version: body.version,
        min_version: body.minVersion ?? null,
        target_name: body.targetName,
        sha256: target.hashes.sha256,
        length: target.length,
        signed_by: signedBy.join(','),
        targets_version: body.targets.signed.version,
        created_at: w.now,
        created_by: ctx.actor.label,
      };
      try {
        await w.tx.insertInto('releases').values(row).execute();
      } catch (e) {
        if (isUniqueViolation(e)) throw new FleetkeyError('RELEASE_EXISTS', { detail: `${row.model}@${row.version} / ${row.target_name} created concurrently`, cause: e });
        throw e;
      }
      w.subject(`release:${row.id}`);
      w.note({ model: row.model, version: row.version, sha256: row.sha256, length: row.length, signedBy, targetsVersion: row.targets_version });
      await w.emit('release.created', `release:${row.id}`, { releaseId: row.id, model: row.model, version: row.version, targetName: row.target_name, sha256: row.sha256, length: row.length });
      return releaseView(row);
    });
  }

  async show(id: string): Promise<Release> {
    const r = await this.store.db.selectFrom('releases').selectAll().where('id', '=', id).executeTakeFirst();
    if (r === undefined) throw new FleetkeyError('RELEASE_NOT_FOUND', { detail: id });
    return releaseView(r);
  }

  async list(filter: { model?: string; limit?: number }): Promise<Release[]> {
    let q = this.store.db.selectFrom('releases').selectAll().orderBy('created_at', 'desc').limit(filter.limit ?? 100);
    if (filter.model !== undefined) q = q.where('model', '=', filter.model);
    return (await q.execute()).map(releaseView);
  }
}
