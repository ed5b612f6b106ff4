import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { sql } from 'kysely';
import type { Store } from '../../store/open-store.js';
import type { GatewayStats, RefusalReason } from '../gateway/index.js';

/** Refusals that can only happen while a CONNECT is being answered (the rest are in-session). */
const CONNECT_REASONS: ReadonlySet<RefusalReason> = new Set<RefusalReason>([
  'not_authorized',
  'bad_credentials',
  'identifier_rejected',
  'server_unavailable',
  'client_id_mismatch',
  'unsupported_protocol_version',
  'bad_authentication_method',
  'will_not_allowed',
  'connect_timeout',
]);

/** What the gateway wiring reports; every call is on a refusal or a cut, never per message. */
export interface GatewayMetrics {
  refusal(reason: RefusalReason, authenticated: boolean): void;
  revocationCut(seconds: number): void;
}

export interface IngestMetrics {
  batch(messages: number, seconds: number): void;
}

export interface ProvisioningMetrics {
  provisioning(method: string, outcome: string, seconds: number): void;
}

/** Sources read at scrape time, so the hot paths pay nothing for them. */
export interface MetricSources {
  readonly store: Store;
  gateway(): GatewayStats | null;
}

/**
 * Prometheus metrics of one server (prom-client, its own registry: several servers in one
 * process, as in tests, never share counters). Per-message counts come from the gateway's own
 * counters and the ingest batches, read when scraped; what is observed inline is one call per
 * batch, refusal, cut or provisioning, never per message.
 */
export class FleetkeyMetrics implements GatewayMetrics, IngestMetrics, ProvisioningMetrics {
  readonly registry = new Registry();
  readonly #refusals: Counter<'reason' | 'stage'>;
  readonly #cut: Histogram;
  readonly #ingestLatency: Histogram;
  readonly #stored: Counter;
  readonly #provisioning: Counter<'method' | 'outcome'>;
  readonly #provisioningLatency: Histogram<'method'>;

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'fleetkey_' });
    const gw = (pick: (s: GatewayStats) => number) =>
      function (this: Gauge | Counter) {
        const s = sources.gateway();
        if (s === null) return;
        if (this instanceof Counter) {
          this.reset();
          this.inc(pick(s));
        } else this.set(pick(s));
      };
    new Gauge({ name: 'fleetkey_gateway_connections', help: 'Authenticated MQTT sessions open now.', registers, collect: gw((s) => s.connections) });
    new Gauge({ name: 'fleetkey_gateway_connecting', help: 'Connections whose CONNECT is not answered yet.', registers, collect: gw((s) => s.connecting) });
    new Counter({ name: 'fleetkey_gateway_connects_accepted_total', help: 'CONNECTs answered with success.', registers, collect: gw((s) => s.connectsAccepted) });
    new Counter({ name: 'fleetkey_gateway_tls_failures_total', help: 'TLS handshakes that failed before any MQTT.', registers, collect: gw((s) => s.tlsFailures) });
    new Counter({ name: 'fleetkey_gateway_disconnects_total', help: 'Authenticated sessions that ended.', registers, collect: gw((s) => s.disconnects) });
    new Counter({ name: 'fleetkey_messages_received_total', help: 'PUBLISH packets accepted for storage by the gateway.', registers, collect: gw((s) => s.messagesIn) });
    new Counter({ name: 'fleetkey_messages_refused_total', help: 'PUBLISH packets refused (topic, payload, rate).', registers, collect: gw((s) => s.messagesRefused) });
    new Gauge({ name: 'fleetkey_ingest_pending', help: 'Messages waiting for their group commit.', registers, collect: gw((s) => s.pendingStores) });
    this.#refusals = new Counter({
      name: 'fleetkey_gateway_refusals_total',
      help: 'Gateway refusals by reason; stage "connect" is a refused CONNECT, "session" a refusal inside a session.',
      labelNames: ['reason', 'stage'],
      registers,
    });
    this.#cut = new Histogram({
      name: 'fleetkey_revocation_cut_seconds',
      help: 'From a revocation (certificate, or device revoked/suspended/retired) written in its transaction, through its commit, to the device session closed.',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    });
    this.#ingestLatency = new Histogram({
      name: 'fleetkey_ingest_batch_seconds',
      help: 'Duration of one group commit of device messages (transaction, durable commit included).',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.#stored = new Counter({ name: 'fleetkey_messages_stored_total', help: 'Device messages committed to the store.', registers });
    this.#provisioning = new Counter({
      name: 'fleetkey_provisioning_total',
      help: 'Provisioning requests by method and outcome (issued, refused, rate_limited, invalid, error).',
      labelNames: ['method', 'outcome'],
      registers,
    });
    this.#provisioningLatency = new Histogram({
      name: 'fleetkey_provisioning_seconds',
      help: 'Provisioning request duration on the device plane, by method.',
      labelNames: ['method'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    const store = sources.store;
    new Gauge({
      name: 'fleetkey_webhook_deliveries',
      help: 'Webhook deliveries by status: pending is the queue depth, failed gave up after every attempt, retrying is pending after a failed attempt.',
      labelNames: ['status'],
      registers,
      async collect() {
        const rows = await store.db
          .selectFrom('webhook_deliveries')
          .select(['status', sql<number>`count(*)`.as('n'), sql<number>`sum(case when last_error is not null then 1 else 0 end)`.as('errored')])
          .groupBy('status')
          .execute();
        this.reset();
        for (const s of ['pending', 'delivered', 'failed']) this.set({ status: s }, 0);
        this.set({ status: 'retrying' }, 0);
        for (const r of rows) {
          this.set({ status: r.status }, Number(r.n));
          if (r.status === 'pending') this.set({ status: 'retrying' }, Number(r.errored ?? 0));
        }
      },
    });
    new Gauge({
      name: 'fleetkey_db_pool_connections',
      help: 'Database connections by state (PostgreSQL pool; SQLite is one connection).',
      labelNames: ['state', 'dialect'],
      registers,
      collect() {
        const p = store.poolStats?.() ?? null;
        this.reset();
        if (p === null) return;
        this.set({ state: 'total', dialect: store.dialect }, p.total);
        this.set({ state: 'idle', dialect: store.dialect }, p.idle);
        this.set({ state: 'waiting', dialect: store.dialect }, p.waiting);
      },
    });
  }

  refusal(reason: RefusalReason, authenticated: boolean): void {
    this.#refusals.inc({ reason, stage: !authenticated || CONNECT_REASONS.has(reason) ? 'connect' : 'session' });
  }

  revocationCut(seconds: number): void {
    this.#cut.observe(seconds);
  }

  batch(messages: number, seconds: number): void {
    this.#stored.inc(messages);
    this.#ingestLatency.observe(seconds);
  }

  provisioning(method: string, outcome: string, seconds: number): void {
    this.#provisioning.inc({ method, outcome });
    this.#provisioningLatency.observe({ method }, seconds);
  }

  /** The Prometheus text exposition format (version 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    this.registry.clear();
  }
}
