import type { BusBody, BusTopic, ClusterBus } from './cluster-bus.js';

/**
 * The single-node bus: nobody else to tell, so publishing is a no-op and nothing arrives. It keeps
 * the rest of the server on one code path whether or not it runs in a cluster.
 */
export class LocalClusterBus implements ClusterBus {
  readonly kind = 'local' as const;
  constructor(readonly nodeId: string) {}
  connected(): boolean {
    return true;
  }
  publish(_body: BusBody): void {}
  subscribe(_kind: BusTopic, _handler: (from: string, body: BusBody) => void): () => void {
    return () => undefined;
  }
  onStateChange(_listener: (connected: boolean) => void): () => void {
    return () => undefined;
  }
  async publishDurable(_subject: string, _data: Uint8Array, _msgId: string): Promise<void> {}
  async close(): Promise<void> {}
}
