/**
 * One cluster node in its own process (started by cluster.ts through vite-node), so a test can
 * kill -9 it. Its config comes as JSON in FLEETKEY_NODE_CONFIG; it answers its URLs over IPC.
 */
import { createServer, loadConfig } from '../../../src/index.js';

const o = JSON.parse(process.env['FLEETKEY_NODE_CONFIG'] ?? '{}') as { dataDir: string; databaseUrl: string; clusterUrl: string; cluster: Record<string, unknown>; nodeId: string; maxPublishesPerSecond: number };
const config = loadConfig({ env: { FLEETKEY_LOG_LEVEL: 'silent' }, overrides: { dataDir: o.dataDir, port: 0, host: '127.0.0.1', databaseUrl: o.databaseUrl, clusterUrl: o.clusterUrl } });
config.deviceHttp.port = 0;
config.gateway.port = 0;
config.gateway.maxPublishesPerSecond = o.maxPublishesPerSecond;
config.cluster = { ...config.cluster, ...o.cluster, nodeId: o.nodeId } as typeof config.cluster;
const server = await createServer(config);
process.send?.({ type: 'ready', url: server.url, deviceUrl: server.deviceUrl, mqttUrl: server.mqttUrl });
process.on('message', (m: { type: string }) => {
  if (m.type === 'stop') void server.close().then(() => process.exit(0));
});
