import type { Logger } from 'pino';
import { GroupCommit } from '../../context/group-commit.js';
import { systemContext } from '../../context/op-context.js';
import type { UnitOfWork, Work } from '../../context/unit-of-work.js';

export interface PresenceChange {
  readonly deviceId: string;
  readonly connected: boolean;
  readonly remote: string | null;
  readonly reason?: string;
}

/**
 * Connects and disconnects, each recorded with its audit entry and its device.connected /
 * device.disconnected event, written in shared transactions: a reconnect storm of thousands of
 * devices costs a handful of durable commits instead of one per connection. A batch that fails is
 * retried one change at a time so one bad row cannot lose the others' records.
 */
export class PresenceRecorder {
  readonly #commits: GroupCommit<PresenceChange, void>;

  constructor(
    private readonly uow: UnitOfWork,
    private readonly logger: Logger,
    options: { maxBatch: number; lingerMs: number } = { maxBatch: 512, lingerMs: 20 },
    /** The cluster node recording (issue 15): a dead node's rows are marked offline by the others. */
    nodeId: string | null = null,
  ) {
    this.#commits = new GroupCommit(async (changes) => {
      const ctx = systemContext('gateway');
      const ops = changes.map((c) => ({ op: { action: c.connected ? 'device.connect' : 'device.disconnect', subject: `device:${c.deviceId}` }, fn: (w: Work) => record(w, c, nodeId) }));
      try {
        await this.uow.runBatch(ctx, ops);
      } catch (batchError) {
        if (ops.length === 1) throw batchError;
        for (const o of ops) await this.uow.runBatch(ctx, [o]).catch((err: unknown) => this.logger.error({ err }, 'presence record failed'));
      }
      return changes.map(() => undefined);
    }, options);
  }

  record(change: PresenceChange): Promise<void> {
    return this.#commits.submit(change);
  }

  drain(): Promise<void> {
    return this.#commits.drain();
  }
}

async function record(w: Work, c: PresenceChange, nodeId: string | null): Promise<void> {
  const connected = c.connected ? 1 : 0;
  let q = w.tx.updateTable('device_presence').set({ connected, since: w.now, remote_address: c.remote, node_id: nodeId }).where('device_id', '=', c.deviceId);
  // A disconnect here must not overwrite a newer connection recorded by another node (a takeover
  // across nodes closes the old session after the new one was recorded).
  if (!c.connected && nodeId !== null) q = q.where((eb) => eb.or([eb('node_id', '=', nodeId), eb('node_id', 'is', null)]));
  const up = await q.executeTakeFirst();
  if (up.numUpdatedRows === 0n) {
    const exists = await w.tx.selectFrom('device_presence').select('device_id').where('device_id', '=', c.deviceId).executeTakeFirst();
    if (exists === undefined) await w.tx.insertInto('device_presence').values({ device_id: c.deviceId, connected, since: w.now, remote_address: c.remote, node_id: nodeId }).execute();
    else if (!c.connected) return; // another node holds the device now: nothing to record here
  }
  if (c.connected) {
    // First connection after provisioning: the device is in service.
    const res = await w.tx.updateTable('devices').set({ status: 'active', updated_at: w.now }).where('id', '=', c.deviceId).where('status', '=', 'provisioned').executeTakeFirst();
    if (res.numUpdatedRows === 1n) await w.emit('device.status_changed', `device:${c.deviceId}`, { deviceId: c.deviceId, from: 'provisioned', to: 'active', reason: 'first connection' });
  }
  w.note({ ...(c.remote === null ? {} : { remote: c.remote }), ...(c.reason === undefined ? {} : { reason: c.reason }) });
  await w.emit(c.connected ? 'device.connected' : 'device.disconnected', `device:${c.deviceId}`, { deviceId: c.deviceId, ...(c.reason === undefined ? {} : { reason: c.reason }) });
}
