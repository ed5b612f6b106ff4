import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { FleetkeyError } from '@fleetkey/protocol';
import type { Clock } from '../../context/clock.js';
import { systemContext } from '../../context/op-context.js';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import type { Store } from '../../store/open-store.js';

/** A node stopped or lost this long ago is dropped from the list. */
const FORGET_AFTER_MS = 24 * 3600_000;

export interface NodeEndpoints {
  url: string;
  deviceUrl: string;
  mqttUrl: string | null;
}

export interface NodeView {
  id: string;
  host: string;
  pid: number;
  endpoints: NodeEndpoints;
  startedAt: string;
  heartbeatAt: string;
  state: 'alive' | 'dead' | 'stopped';
  stoppedAt: string | null;
  stopReason: string | null;
  connectedDevices: number;
}

/**
 * Membership through the store: each node upserts its row every `heartbeatMs`; every node looks
 * for rows whose heartbeat is older than `timeoutMs` and, in one transaction per dead node, marks
 * the node dead and the devices it held offline (one device.disconnected event each, reason
 * `node_lost`). Conditional updates make the reap idempotent: two nodes noticing the same death
 * write it once. A node that comes back after being declared dead simply heartbeats again; its
 * devices had been cut anyway (its sessions were lost or are re-recorded on their next connect).
 */
export class NodeRegistry {
  #timer: NodeJS.Timeout | null = null;
  #beating: Promise<void> | null = null;
  #ticks = 0;
  #endpoints: NodeEndpoints = { url: '', deviceUrl: '', mqttUrl: null };

  constructor(
    readonly nodeId: string,
    private readonly store: Store,
    private readonly uow: UnitOfWork,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly heartbeatMs: number,
    private readonly timeoutMs: number,
  ) {}

  /** Joins: refuses an id another live node holds, then writes the first heartbeat. */
  async join(): Promise<void> {
    const now = this.clock.now();
    const row = await this.store.db.selectFrom('cluster_nodes').select(['heartbeat_at', 'stopped_at', 'pid', 'host']).where('id', '=', this.nodeId).executeTakeFirst();
    if (row !== undefined && row.stopped_at === null && now - Number(row.heartbeat_at) < this.timeoutMs && !(row.pid === process.pid && row.host === hostname())) {
      throw new FleetkeyError('CLUSTER_NODE_ID_TAKEN', { detail: `node ${this.nodeId} heartbeat ${now - Number(row.heartbeat_at)} ms ago` });
    }
    await this.#upsert(now, true);
    // Heartbeats from the moment the row exists: the rest of the start (CA, listeners) may take
    // longer than the timeout on a loaded machine, and a node reaped while starting stays dead.
    this.start();
  }

  /** The node's listeners, written at once (the list shows them from the moment the node serves). */
  async setEndpoints(e: NodeEndpoints): Promise<void> {
    this.#endpoints = e;
    await this.#beating;
    await this.#upsert(this.clock.now(), false);
  }

  start(): void {
    if (this.#timer !== null) return;
    this.#beating = this.#tick()
      .catch((err: unknown) => this.logger.warn({ err }, 'cluster heartbeat failed'))
      .finally(() => (this.#beating = null));
    this.#timer = setInterval(() => {
      if (this.#beating !== null) return;
      this.#beating = this.#tick()
        .catch((err: unknown) => this.logger.warn({ err }, 'cluster heartbeat failed'))
        .finally(() => (this.#beating = null));
    }, this.heartbeatMs);
    this.#timer.unref();
  }

  /** Leaves cleanly: the row says stopped, so nobody reaps it; the gateway already recorded its disconnects. */
  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#beating;
    await this.store.db.updateTable('cluster_nodes').set({ stopped_at: this.clock.now(), stop_reason: 'stopped' }).where('id', '=', this.nodeId).execute().catch((err: unknown) => this.logger.warn({ err }, 'cluster leave failed'));
  }

  async #tick(): Promise<void> {
    const now = this.clock.now();
    await this.#upsert(now, false);
    await this.reap(now);
    // Rows of nodes gone for a day are history (each single-node start has its own id): the audit
    // log keeps their losses.
    if (this.#ticks++ % 60 === 0) await this.store.db.deleteFrom('cluster_nodes').where('stopped_at', '<', now - FORGET_AFTER_MS).execute();
  }

  async #upsert(now: number, starting: boolean): Promise<void> {
    const endpoints = JSON.stringify(this.#endpoints);
    if (!starting) {
      // Declared dead by others (a pause longer than the timeout: GC, VM freeze, network cut to the
      // database): its devices were marked offline; they are re-recorded on their next connect.
      const r = await this.store.db.updateTable('cluster_nodes').set({ heartbeat_at: now, endpoints, stopped_at: null, stop_reason: null }).where('id', '=', this.nodeId).where('stopped_at', 'is not', null).where('stop_reason', '!=', 'stopped').executeTakeFirst();
      if (r.numUpdatedRows > 0n) this.logger.warn({ node: this.nodeId }, 'this node had been declared dead by the cluster; rejoined');
    }
    const set = { heartbeat_at: now, endpoints, ...(starting ? { started_at: now, stopped_at: null, stop_reason: null, pid: process.pid, host: hostname() } : {}) };
    const up = await this.store.db.updateTable('cluster_nodes').set(set).where('id', '=', this.nodeId).executeTakeFirst();
    if (up.numUpdatedRows > 0n) return;
    await this.store.db
      .insertInto('cluster_nodes')
      .values({ id: this.nodeId, host: hostname(), pid: process.pid, endpoints, started_at: now, heartbeat_at: now, stopped_at: null, stop_reason: null })
      .onConflict((oc) => oc.column('id').doUpdateSet(set))
      .execute();
  }

  /** Declares every node silent for longer than the timeout dead and marks its devices offline. */
  async reap(now: number): Promise<string[]> {
    const dead = await this.store.db
      .selectFrom('cluster_nodes')
      .select('id')
      .where('stopped_at', 'is', null)
      .where('heartbeat_at', '<', now - this.timeoutMs)
      .where('id', '!=', this.nodeId)
      .execute();
    const reaped: string[] = [];
    for (const { id } of dead) {
      const did = await this.uow.run(systemContext('cluster'), { action: 'cluster.node_lost', subject: `node:${id}` }, async (w) => {
        // Conditional: only the first node to notice writes the death and its disconnects.
        const r = await w.tx.updateTable('cluster_nodes').set({ stopped_at: w.now, stop_reason: 'heartbeat_timeout' }).where('id', '=', id).where('stopped_at', 'is', null).where('heartbeat_at', '<', now - this.timeoutMs).executeTakeFirst();
        if (r.numUpdatedRows === 0n) return false;
        const held = await w.tx.selectFrom('device_presence').select('device_id').where('node_id', '=', id).where('connected', '=', 1).execute();
        if (held.length > 0) {
          await w.tx.updateTable('device_presence').set({ connected: 0, since: w.now, remote_address: null }).where('node_id', '=', id).where('connected', '=', 1).execute();
          for (const h of held) await w.emit('device.disconnected', `device:${h.device_id}`, { deviceId: h.device_id, reason: 'node_lost' });
        }
        w.note({ devices: held.length, lastHeartbeatMsAgo: now - this.timeoutMs });
        return true;
      });
      if (did) {
        reaped.push(id);
        this.logger.warn({ node: id }, 'cluster node lost: its devices are marked offline');
      }
    }
    return reaped;
  }

  async list(): Promise<NodeView[]> {
    const now = this.clock.now();
    const rows = await this.store.db.selectFrom('cluster_nodes').selectAll().orderBy('started_at').execute();
    const counts = await this.store.db
      .selectFrom('device_presence')
      .select(['node_id', (eb) => eb.fn.countAll<string | number>().as('n')])
      .where('connected', '=', 1)
      .where('node_id', 'is not', null)
      .groupBy('node_id')
      .execute();
    const byNode = new Map(counts.map((c) => [c.node_id, Number(c.n)]));
    return rows.map((r) => {
      const hb = Number(r.heartbeat_at);
      const state = r.stopped_at !== null ? (r.stop_reason === 'stopped' ? 'stopped' : 'dead') : now - hb > this.timeoutMs ? 'dead' : 'alive';
      return {
        id: r.id,
        host: r.host,
        pid: r.pid,
        endpoints: JSON.parse(r.endpoints) as NodeEndpoints,
        startedAt: new Date(Number(r.started_at)).toISOString(),
        heartbeatAt: new Date(hb).toISOString(),
        state,
        stoppedAt: r.stopped_at === null ? null : new Date(Number(r.stopped_at)).toISOString(),
        stopReason: r.stop_reason,
        connectedDevices: state === 'alive' ? (byNode.get(r.id) ?? 0) : 0,
      };
    });
  }
}
