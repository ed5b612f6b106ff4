import type { EventType } from '@fleetkey/protocol';
import type { Logger } from 'pino';
import type { Clock } from '../../context/clock.js';
import type { Store } from '../../store/open-store.js';
import type { EventBus, FleetEvent } from '../events/event-bus.js';
import type { ClusterBus } from './cluster-bus.js';

/**
 * The events another node must act on at once: a revoked or superseded certificate (its view and
 * live sessions), a device revoked, suspended or retired (live sessions), a name rebound (its
 * pending commands follow the new holder).
 */
export const RELAYED: readonly EventType[] = ['certificate.revoked', 'certificate.superseded', 'device.status_changed', 'name.rebound'];
const RELAYED_SET = new Set<string>(RELAYED);

/**
 * A commit's created_at is its transaction's start; a transaction may commit after a later one.
 * The poll re-reads this far back and skips ids it has applied, so a slow commit is not missed.
 */
const SLACK_MS = 30_000;

/**
 * Carries committed events between nodes: the bus for speed (ids only), the events table as
 * truth. A node applies an event by reading its row from the store and publishing it on its own
 * in-process EventBus, where the CA module updates the revocation view and the gateway cuts the
 * sessions it holds — the same listeners as for a local change, so there is one code path.
 *  - bus message: ids → one indexed read → apply (the fast path, p99 ≤ 100 ms);
 *  - store poll: every `pollMs` while the bus is down, every 5 × `pollMs` while it is up (a
 *    message lost in flight), and at once on reconnect;
 * Applied ids are remembered for the slack window, so each event is applied once per node.
 * Remote events are published locally with deliveries = 0: the webhook dispatcher of the node that
 * committed them already owns their deliveries.
 */
export class EventRelay {
  readonly #applied = new Map<string, number>(); // event id → created_at
  #watermark: number;
  #timer: NodeJS.Timeout | null = null;
  #polling: Promise<void> | null = null;
  #lastPoll = 0;
  readonly #unsubscribe: (() => void)[] = [];

  constructor(
    private readonly store: Store,
    private readonly events: EventBus,
    private readonly bus: ClusterBus,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly pollMs: number,
  ) {
    // The revocation view and every credential check already read the store at start: only
    // what commits from now on needs relaying.
    this.#watermark = clock.now();
  }

  start(): void {
    this.#unsubscribe.push(
      this.events.subscribe((e) => this.#local(e)),
      this.bus.subscribe('events', (_from, body) => {
        if (body.kind === 'events') void this.#fetch(body.ids).catch((err: unknown) => this.logger.warn({ err }, 'cluster event fetch failed'));
      }),
      this.bus.onStateChange((up) => {
        if (up) this.pollNow();
      }),
    );
    this.#timer = setInterval(() => {
      const every = this.bus.connected() ? this.pollMs * 5 : this.pollMs;
      if (this.clock.now() - this.#lastPoll >= every) this.pollNow();
    }, Math.max(25, Math.floor(this.pollMs / 2)));
    this.#timer.unref();
  }

  /** Reads what others committed since the watermark (less the slack) and applies what is new. */
  pollNow(): Promise<void> {
    this.#polling ??= this.#poll()
      .catch((err: unknown) => this.logger.warn({ err }, 'cluster store poll failed'))
      .finally(() => (this.#polling = null));
    return this.#polling;
  }

  async stop(): Promise<void> {
    for (const u of this.#unsubscribe) u();
    if (this.#timer !== null) clearInterval(this.#timer);
    await this.#polling;
  }

  #local(e: FleetEvent): void {
    if (!RELAYED_SET.has(e.type) || this.#applied.has(e.id)) return;
    this.#applied.set(e.id, e.createdAt);
    this.bus.publish({ kind: 'events', ids: [e.id] });
  }

  async #fetch(ids: readonly string[]): Promise<void> {
    const fresh = ids.filter((id) => !this.#applied.has(id));
    if (fresh.length === 0) return;
    const rows = await this.store.db.selectFrom('events').select(['id', 'type', 'subject', 'payload', 'created_at']).where('id', 'in', fresh).execute();
    for (const r of rows) this.#apply(r);
  }

  async #poll(): Promise<void> {
    this.#lastPoll = this.clock.now();
    const since = this.#watermark - SLACK_MS;
    const rows = await this.store.db
      .selectFrom('events')
      .select(['id', 'type', 'subject', 'payload', 'created_at'])
      .where('created_at', '>=', since)
      .where('type', 'in', [...RELAYED])
      .orderBy('created_at')
      .execute();
    for (const r of rows) this.#apply(r);
    // Only advance to what the database has shown us (not our clock): no gap between polls.
    const newest = rows.reduce((m, r) => Math.max(m, Number(r.created_at)), this.#watermark);
    this.#watermark = newest;
    for (const [id, at] of this.#applied) if (at < newest - 2 * SLACK_MS) this.#applied.delete(id);
  }

  #apply(r: { id: string; type: string; subject: string; payload: string; created_at: number | string }): void {
    if (this.#applied.has(r.id) || !RELAYED_SET.has(r.type)) return;
    const createdAt = Number(r.created_at);
    this.#applied.set(r.id, createdAt);
    let payload: Record<string, unknown>;
    try {
      payload = JSON.parse(r.payload) as Record<string, unknown>;
    } catch {
      return;
    }
    this.events.publish({ id: r.id, type: r.type as EventType, subject: r.subject, payload, createdAt, deliveries: 0 });
  }
}
