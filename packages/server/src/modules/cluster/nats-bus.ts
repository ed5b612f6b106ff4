import { connect, Events, RetentionPolicy, StorageType, DiscardPolicy, type NatsConnection, type JetStreamClient } from 'nats';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { Logger } from 'pino';
import { BUS_TOPICS, BusEnvelopeSchema, subjectOf, type BusBody, type BusTopic, type ClusterBus } from './cluster-bus.js';

const checkEnvelope = TypeCompiler.Compile(BusEnvelopeSchema);
const MAX_MESSAGE_BYTES = 64 * 1024;

export interface NatsBusOptions {
  readonly url: string;
  readonly nodeId: string;
  readonly logger: Logger;
  /** Subject prefix of the cluster messages (one cluster per prefix on a shared NATS). */
  readonly prefix?: string;
  /** The JetStream stream of stored device messages and its subjects (`<subjectRoot>.>`). */
  readonly stream: { name: string; subjectRoot: string };
}

/**
 * The cluster bus on NATS. Core NATS subjects carry the cluster messages (at most once, fast:
 * the store poll covers what is lost); JetStream carries device messages out (at least once:
 * a publish resolves only on the stream's acknowledgement). The client reconnects forever with
 * a short wait, so a NATS restart costs the cluster its fast path for that long, not its nodes.
 */
export class NatsClusterBus implements ClusterBus {
  readonly kind = 'nats' as const;
  readonly nodeId: string;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #prefix: string;
  readonly #logger: Logger;
  readonly #handlers = new Map<BusTopic, Set<(from: string, body: BusBody) => void>>();
  readonly #stateListeners = new Set<(connected: boolean) => void>();
  #connected = true;

  private constructor(nc: NatsConnection, o: NatsBusOptions) {
    this.#nc = nc;
    this.#js = nc.jetstream();
    this.nodeId = o.nodeId;
    this.#prefix = o.prefix ?? 'fleetkey.cluster';
    this.#logger = o.logger;
    for (const kind of BUS_TOPICS) {
      this.#handlers.set(kind, new Set());
      nc.subscribe(subjectOf(this.#prefix, kind), { callback: (err, msg) => (err === null ? this.#receive(kind, msg.data) : undefined) });
    }
    void this.#watch();
  }

  /** Connects (failing fast when NATS is not there at start) and makes sure the stream exists. */
  static async open(o: NatsBusOptions): Promise<NatsClusterBus> {
    const u = new URL(o.url);
    const nc = await connect({
      servers: `${u.hostname}:${u.port === '' ? '4222' : u.port}`,
      name: `fleetkey-${o.nodeId}`,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 2_000,
      maxPingOut: 2,
      timeout: 5_000,
      ...(u.username === '' ? {} : { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) }),
    });
    try {
      const jsm = await nc.jetstreamManager();
      const config = {
        name: o.stream.name,
        subjects: [`${o.stream.subjectRoot}.>`],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
        // Duplicate window for msgId: a retried publish of the same stored message is dropped.
        duplicate_window: 120_000_000_000,
      };
      try {
        await jsm.streams.info(o.stream.name);
      } catch {
        await jsm.streams.add(config);
      }
    } catch (e) {
      await nc.close();
      throw e;
    }
    return new NatsClusterBus(nc, o);
  }

  connected(): boolean {
    return this.#connected && !this.#nc.isClosed();
  }

  publish(body: BusBody): void {
    if (!this.connected()) return;
    try {
      this.#nc.publish(subjectOf(this.#prefix, body.kind), Buffer.from(JSON.stringify({ from: this.nodeId, body })));
    } catch (err) {
      this.#logger.warn({ err }, 'cluster bus publish failed');
    }
  }

  subscribe(kind: BusTopic, handler: (from: string, body: BusBody) => void): () => void {
    const set = this.#handlers.get(kind)!;
    set.add(handler);
    return () => set.delete(handler);
  }

  onStateChange(listener: (connected: boolean) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  async publishDurable(subject: string, data: Uint8Array, msgId: string): Promise<void> {
    await this.#js.publish(subject, data, { msgID: msgId, timeout: 5_000 });
  }

  async close(): Promise<void> {
    if (this.#nc.isClosed()) return;
    await this.#nc.drain().catch(() => this.#nc.close());
  }

  #receive(kind: BusTopic, data: Uint8Array): void {
    // A peer's message is untrusted input: size, JSON, schema, then our own echo dropped.
    if (data.length > MAX_MESSAGE_BYTES) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(data).toString('utf8'));
    } catch {
      return;
    }
    if (!checkEnvelope.Check(parsed) || parsed.body.kind !== kind || parsed.from === this.nodeId) return;
    for (const h of this.#handlers.get(kind)!) {
      try {
        h(parsed.from, parsed.body);
      } catch (err) {
        this.#logger.error({ err, kind }, 'cluster bus handler failed');
      }
    }
  }

  async #watch(): Promise<void> {
    for await (const s of this.#nc.status()) {
      const up = s.type === Events.Reconnect ? true : s.type === Events.Disconnect ? false : null;
      if (up === null || up === this.#connected) continue;
      this.#connected = up;
      this.#logger.warn({ connected: up }, up ? 'cluster bus reconnected' : 'cluster bus lost');
      for (const l of this.#stateListeners) l(up);
    }
  }
}
