import { Type, type Static } from '@sinclair/typebox';

/**
 * What the nodes of a cluster tell each other. The bus is for speed, never for truth: a message
 * names something committed in the store (event ids) or asks a node to look at the store
 * (commands), so a lost message only delays, and a forged one can at most cause a store read or a
 * session takeover (which the device answers by reconnecting). The one exception is `session`:
 * see gateway-link.ts.
 */
export const BUS_TOPICS = ['events', 'session', 'command', 'rate'] as const;
export type BusTopic = (typeof BUS_TOPICS)[number];

const Uuid = Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$', maxLength: 36 });
const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' });

/** Every message on the bus, validated before anything reads it (the bus is an edge too). */
export const BusEnvelopeSchema = Type.Object(
  {
    from: Id,
    body: Type.Union([
      // Ids of committed events a node should apply (revocations, status changes, rebinds).
      Type.Object({ kind: Type.Literal('events'), ids: Type.Array(Uuid, { minItems: 1, maxItems: 500 }) }, { additionalProperties: false }),
      // A device opened a session on `from` at `at` (ms): older sessions elsewhere end [MQTT-3.1.4-3].
      Type.Object({ kind: Type.Literal('session'), deviceId: Uuid, at: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }),
      // The PUBLISH allowance a device had on `from` when it moved away (cluster-publish-rate.ts).
      Type.Object({ kind: Type.Literal('rate'), deviceId: Uuid, tokens: Type.Number({ minimum: 0, maximum: 1_000_000 }), at: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }),
      // A command was stored for this name: its holder's node pushes it.
      Type.Object({ kind: Type.Literal('command'), nameId: Uuid }, { additionalProperties: false }),
    ]),
  },
  { additionalProperties: false },
);
export type BusEnvelope = Static<typeof BusEnvelopeSchema>;
export type BusBody = BusEnvelope['body'];

export interface ClusterBus {
  /** 'local': one node, in-process; 'nats': NATS with JetStream; 'ipc': workers of one machine. */
  readonly kind: 'local' | 'nats' | 'ipc';
  readonly nodeId: string;
  /** Whether messages published now reach the other nodes (false while NATS is unreachable). */
  connected(): boolean;
  /** Fire and forget to every other node; dropped while disconnected (the store poll covers it). */
  publish(body: BusBody): void;
  /** Messages of other nodes (never this node's own), already validated. */
  subscribe(kind: BusTopic, handler: (from: string, body: BusBody) => void): () => void;
  /** Told on every loss and recovery of the bus; a recovery triggers a reconcile from the store. */
  onStateChange(listener: (connected: boolean) => void): () => void;
  /**
   * Stores `data` in the durable telemetry stream under `subject` (JetStream); resolves once the
   * stream acknowledged it. `msgId` makes a retry of the same message a duplicate the stream drops.
   * The local bus has no stream and resolves at once.
   */
  publishDurable(subject: string, data: Uint8Array, msgId: string): Promise<void>;
  close(): Promise<void>;
}

/** Subject of a bus topic: one per kind, every node subscribes to all three. */
export const subjectOf = (prefix: string, kind: BusTopic): string => `${prefix}.${kind}`;
