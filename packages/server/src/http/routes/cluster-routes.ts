import { ClusterNodeList, NoQuery } from '@fleetkey/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ClusterModule } from '../../modules/cluster/cluster-module.js';

/**
 * The nodes of the cluster and their heartbeats. Hosts, pids and internal listener URLs are
 * infrastructure detail: `cluster:read` (admin, operator), not every viewer.
 */
export const clusterRoutes: FastifyPluginAsyncTypebox<{ cluster: ClusterModule }> = async (app, { cluster }) => {
  app.get('/cluster/nodes', { config: { permission: 'cluster:read' }, schema: { tags: ['cluster'], querystring: NoQuery, response: { 200: ClusterNodeList } } }, async () => ({
    self: cluster.nodeId,
    bus: cluster.bus.kind,
    busConnected: cluster.bus.connected(),
    nodes: await cluster.nodes.list(),
  }));
};
