import type { Connection } from './connection.js';
import type { PublishRateStore } from './publish-rate.js';
import type { SessionStore } from './sessions.js';
import type { GatewayHooks, GatewayLimits, GatewayStats, RefusalInfo } from './types.js';

/** What a connection needs from the gateway that owns it. */
export interface GatewayCore {
  readonly limits: GatewayLimits;
  readonly hooks: GatewayHooks;
  readonly stats: GatewayStats;
  /** The live, CONNACKed connection of each device: at most one [MQTT-3.1.4-3]. */
  readonly devices: Map<string, Connection>;
  readonly conns: Set<Connection>;
  readonly sessions: SessionStore;
  /** PUBLISH allowance per device id, across its connections. */
  readonly publishRate: PublishRateStore;
  closing: boolean;
  refuse(info: RefusalInfo): void;
  reportError(err: unknown, where: string): void;
  /** Batches a connection's writes until the end of this turn of the event loop. */
  scheduleUncork(conn: Connection): void;
}

export function newStats(): GatewayStats {
  return {
    connections: 0,
    connecting: 0,
    connectsAccepted: 0,
    connectsRefused: 0,
    messagesIn: 0,
    messagesAcked: 0,
    messagesRefused: 0,
    storeFailures: 0,
    pendingStores: 0,
    pausedConnections: 0,
    commandsSent: 0,
    commandsAcked: 0,
    disconnects: 0,
    tlsFailures: 0,
  };
}
