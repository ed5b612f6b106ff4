import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { FleetkeyError } from '@fleetkey/protocol';
import type { FleetkeyConfig } from '../../config/config-schema.js';
import type { Clock } from '../../context/clock.js';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import type { Store } from '../../store/open-store.js';
import type { CommandService } from '../commands/command-service.js';
import type { EventBus } from '../events/event-bus.js';
import type { Gateway } from '../gateway/index.js';
import type { StoredMessage } from '../telemetry/ingest.js';
import type { ClusterBus } from './cluster-bus.js';
import { ClusterPublishRate } from './cluster-publish-rate.js';
import { EventRelay } from './event-relay.js';
import { GatewayLink } from './gateway-link.js';
import { IpcClusterBus } from './ipc-bus.js';
import { LocalClusterBus } from './local-bus.js';
import { NatsClusterBus } from './nats-bus.js';
import { NodeRegistry, type NodeEndpoints } from './node-registry.js';
import { TelemetryOut } from './telemetry-out.js';

export interface ClusterDeps {
  readonly config: FleetkeyConfig;
  readonly store: Store;
  readonly uow: UnitOfWork;
  readonly events: EventBus;
  readonly clock: Clock;
  readonly logger: Logger;
  /** `serve --workers N` without NATS: the workers' bus through the primary (node:cluster IPC). */
  readonly workerBus?: boolean;
}

export interface ClusterModule {
  readonly nodeId: string;
  readonly bus: ClusterBus;
  readonly nodes: NodeRegistry;
  /** Whether this node is part of a multi-node cluster (`cluster.url`, or a worker of `serve --workers`). */
  readonly clustered: boolean;
  readonly relay: EventRelay | null;
  readonly telemetry: TelemetryOut | null;
  /** The gateway's per-device PUBLISH allowance, handed between nodes when a device moves. */
  readonly publishRate: ClusterPublishRate;
  /** Called by the gateway wiring: sessions opened/closed here, commands stored here. */
  link(gateway: Gateway, commands: CommandService): GatewayLink;
  /** Every stored device message (after commit). */
  stored(m: StoredMessage): void;
  /** After the listeners are up: publish the endpoints, start heartbeats and the relay. */
  start(endpoints: NodeEndpoints): Promise<void>;
  close(): Promise<void>;
}

/**
 * The cluster module (issue 15). Without `cluster.url`: a local bus, a node row with heartbeats
 * (so `GET /v1/cluster/nodes` answers with this one node) and nothing else. With it: PostgreSQL is
 * required (the shared system of record), NATS is joined before the node accepts anything, and the
 * event relay and gateway link carry revocations, takeovers and commands between nodes.
 */
export async function createClusterModule(d: ClusterDeps): Promise<ClusterModule> {
  const c = d.config.cluster;
  const nodeId = c.nodeId ?? `${hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 32)}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const clustered = c.url !== undefined || d.workerBus === true;
  if (clustered && d.store.dialect !== 'postgres') throw new FleetkeyError('CLUSTER_NEEDS_POSTGRES');
  let bus: ClusterBus;
  if (c.url === undefined) bus = d.workerBus === true ? new IpcClusterBus(nodeId, d.logger) : new LocalClusterBus(nodeId);
  else {
    try {
      bus = await NatsClusterBus.open({ url: c.url, nodeId, logger: d.logger, stream: { name: c.telemetryStream, subjectRoot: 'fleetkey.data' } });
    } catch (e) {
      // The URL may carry credentials: only the host goes into the error.
      throw new FleetkeyError('CLUSTER_BUS_UNAVAILABLE', { detail: `${new URL(c.url).host}: ${(e as Error).message}` });
    }
  }
  const nodes = new NodeRegistry(nodeId, d.store, d.uow, d.clock, d.logger, c.heartbeatMs, c.nodeTimeoutMs);
  try {
    await nodes.join();
  } catch (e) {
    await bus.close();
    throw e;
  }
  const relay = clustered ? new EventRelay(d.store, d.events, bus, d.clock, d.logger, c.storePollMs) : null;
  const telemetry = c.url !== undefined ? new TelemetryOut(bus, 'fleetkey.data', d.logger) : null;
  const offState = telemetry === null ? () => undefined : bus.onStateChange((up) => (up ? telemetry.flush() : undefined));
  let link: GatewayLink | null = null;
  const publishRate = new ClusterPublishRate(d.config.gateway.maxPublishesPerSecond);
  return {
    nodeId,
    bus,
    nodes,
    clustered,
    relay,
    telemetry,
    publishRate,
    link: (gateway, commands) => (link = new GatewayLink(bus, gateway, commands, d.logger, () => d.clock.now(), publishRate)),
    stored: (m) => telemetry?.stored(m),
    start: async (endpoints) => {
      await nodes.setEndpoints(endpoints);
      nodes.start();
      relay?.start();
    },
    close: async () => {
      offState();
      link?.close();
      await relay?.stop();
      await telemetry?.drain();
      await nodes.stop();
      await bus.close();
    },
  };
}
