import type { Cluster, Worker } from 'node:cluster';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { Logger } from 'pino';
import { BusEnvelopeSchema, type BusBody, type BusTopic, type ClusterBus } from './cluster-bus.js';

const checkEnvelope = TypeCompiler.Compile(BusEnvelopeSchema);
const TAG = 'fleetkeyBus';

/**
 * The single-machine bus of `fleetkey serve --workers N` (issue 15): the workers of one primary
 * (node:cluster) tell each other what they committed through the primary's IPC channels, exactly
 * what NATS carries between machines. No JetStream: the telemetry export needs `--cluster`.
 */
export class IpcClusterBus implements ClusterBus {
  readonly kind = 'ipc' as const;
  readonly #handlers = new Map<BusTopic, Set<(from: string, body: BusBody) => void>>();
  readonly #onMessage = (m: unknown) => this.#receive(m);

  constructor(
    readonly nodeId: string,
    private readonly logger: Logger,
  ) {
    process.on('message', this.#onMessage);
  }

  connected(): boolean {
    return process.connected === true;
  }

  publish(body: BusBody): void {
    if (!this.connected()) return;
    process.send?.({ [TAG]: { from: this.nodeId, body } }, undefined, undefined, (err) => {
      if (err !== null) this.logger.warn({ err }, 'worker bus publish failed');
    });
  }

  subscribe(kind: BusTopic, handler: (from: string, body: BusBody) => void): () => void {
    let set = this.#handlers.get(kind);
    if (set === undefined) this.#handlers.set(kind, (set = new Set()));
    set.add(handler);
    return () => set.delete(handler);
  }

  onStateChange(_listener: (connected: boolean) => void): () => void {
    return () => undefined;
  }

  async publishDurable(): Promise<void> {}

  async close(): Promise<void> {
    process.off('message', this.#onMessage);
  }

  #receive(m: unknown): void {
    if (typeof m !== 'object' || m === null || !(TAG in m)) return;
    const e = (m as Record<string, unknown>)[TAG];
    if (!checkEnvelope.Check(e) || e.from === this.nodeId) return;
    for (const h of this.#handlers.get(e.body.kind) ?? []) {
      try {
        h(e.from, e.body);
      } catch (err) {
        this.logger.error({ err }, 'worker bus handler failed');
      }
    }
  }
}

/** In the primary: every bus message of one worker goes to all the others. */
export function relayWorkerBus(cluster: Cluster): void {
  cluster.on('message', (from: Worker, m: unknown) => {
    if (typeof m !== 'object' || m === null || !(TAG in m)) return;
    for (const w of Object.values(cluster.workers ?? {})) if (w !== undefined && w !== from && w.isConnected()) w.send(m as object);
  });
}
