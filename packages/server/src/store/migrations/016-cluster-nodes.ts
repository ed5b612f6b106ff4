import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Cluster nodes (issue 15): every node of a cluster sharing this database announces itself with a
 * heartbeat row; a node whose heartbeat is older than the timeout is dead, and the devices it held
 * (device_presence.node_id) are marked offline by whichever live node notices first.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  const ms = 'bigint' as const;
  await db.schema
    .createTable('cluster_nodes')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('host', 'varchar(255)', (c) => c.notNull())
    .addColumn('pid', 'integer', (c) => c.notNull())
    // The node's listeners as JSON ({ url, deviceUrl, mqttUrl }): what an operator or a load balancer needs.
    .addColumn('endpoints', 'text', (c) => c.notNull())
    .addColumn('started_at', ms, (c) => c.notNull())
    .addColumn('heartbeat_at', ms, (c) => c.notNull())
    // Set when the node stopped cleanly, or when another node declared it dead.
    .addColumn('stopped_at', ms)
    .addColumn('stop_reason', 'varchar(32)')
    .execute();
  await db.schema.createIndex('cluster_nodes_heartbeat').on('cluster_nodes').columns(['stopped_at', 'heartbeat_at']).execute();
  // Which node holds each connected device (null: a single node, or rows from before clustering).
  await db.schema.alterTable('device_presence').addColumn('node_id', 'varchar(64)').execute();
  await db.schema.createIndex('device_presence_node').on('device_presence').columns(['node_id', 'connected']).execute();
}
