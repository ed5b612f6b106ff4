import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { UpdateReport } from '@fleetkey/protocol';
import { GroupCommit } from '../../context/group-commit.js';
import { systemContext } from '../../context/op-context.js';
import type { UnitOfWork, Work } from '../../context/unit-of-work.js';

/** One validated report as the gateway accepted it (payload checked with parseUpdateReport). */
export interface ReceivedUpdateReport {
  readonly deviceId: string;
  readonly report: UpdateReport;
  readonly receivedAt: number;
}

/**
 * Stores `devices/{id}/update` reports (issue 12 contract). Each report is one operation with its
 * own audit entry and its `device.update_reported` event, written in shared transactions (a
 * rollout wave of hundreds of devices reporting progress costs a handful of durable commits),
 * like presence. `installed` also records the version on the device row, which is what the
 * registry answers `installedVersion` queries from.
 */
export class UpdateReportRecorder {
  readonly #commits: GroupCommit<ReceivedUpdateReport, void>;

  constructor(
    private readonly uow: UnitOfWork,
    private readonly logger: Logger,
    options: { maxBatch: number; lingerMs: number } = { maxBatch: 256, lingerMs: 10 },
  ) {
    this.#commits = new GroupCommit(async (items) => {
      const ctx = systemContext('gateway');
      const ops = items.map((r) => ({ op: { action: 'device.update_report', subject: `device:${r.deviceId}` }, fn: (w: Work) => record(w, r) }));
      try {
        await this.uow.runBatch(ctx, ops);
      } catch (batchError) {
        if (ops.length === 1) throw batchError;
        // One bad row must not lose the others: retried one by one, a failure then surfaces to
        // its own PUBLISH (not acknowledged, so the device resends it).
        for (const o of ops) await this.uow.runBatch(ctx, [o]).catch((err: unknown) => this.logger.error({ err }, 'update report record failed'));
      }
      return items.map(() => undefined);
    }, options);
  }

  /** Resolves once the report, its audit entry and its event are committed. */
  record(r: ReceivedUpdateReport): Promise<void> {
    return this.#commits.submit(r);
  }

  drain(): Promise<void> {
    return this.#commits.drain();
  }
}

async function record(w: Work, r: ReceivedUpdateReport): Promise<void> {
  const { report } = r;
  const bound = await w.tx.selectFrom('bindings').select('name_id').where('device_id', '=', r.deviceId).where('valid_to', 'is', null).executeTakeFirst();
  const nameId = bound?.name_id ?? null;
  await w.tx
    .insertInto('device_update_reports')
    .values({
      id: randomUUID(),
      device_id: r.deviceId,
      name_id: nameId,
      release_id: report.releaseId,
      version: report.version,
      phase: report.phase,
      code: report.code ?? null,
      progress: report.progress ?? null,
      received_at: r.receivedAt,
    })
    .execute();
  if (report.phase === 'installed') {
    await w.tx
      .updateTable('devices')
      .set({ installed_version: report.version, installed_release_id: report.releaseId, installed_at: r.receivedAt, updated_at: w.now })
      .where('id', '=', r.deviceId)
      .execute();
  }
  w.note({ releaseId: report.releaseId, version: report.version, phase: report.phase, ...(report.code === undefined ? {} : { code: report.code }) });
  await w.emit('device.update_reported', `device:${r.deviceId}`, {
    deviceId: r.deviceId,
    nameId,
    releaseId: report.releaseId,
    version: report.version,
    phase: report.phase,
    code: report.code ?? null,
    ...(report.progress === undefined ? {} : { progress: report.progress }),
  });
}
