import type { Catalogue } from './error-spec.js';

/** Cluster membership and the cluster bus (issue 15). */
export const clusterErrors = {
  CLUSTER_NEEDS_POSTGRES: { status: 500, message: 'A cluster needs a shared PostgreSQL database (DATABASE_URL); SQLite is one node only.' },
  CLUSTER_BUS_UNAVAILABLE: { status: 503, message: 'The cluster bus (NATS) could not be reached at start.' },
  CLUSTER_NODE_ID_TAKEN: { status: 500, message: 'Another live node of the cluster already uses this node id.' },
} as const satisfies Catalogue;
