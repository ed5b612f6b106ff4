import { Type, type Static } from '@sinclair/typebox';

/** One node of the cluster as `GET /v1/cluster/nodes` shows it (issue 15). */
export const ClusterNode = Type.Object(
  {
    id: Type.String(),
    host: Type.String(),
    pid: Type.Integer(),
    endpoints: Type.Object({ url: Type.String(), deviceUrl: Type.String(), mqttUrl: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false }),
    startedAt: Type.String({ format: 'date-time' }),
    heartbeatAt: Type.String({ format: 'date-time' }),
    /** alive: heartbeat within the timeout; dead: declared lost (its devices marked offline); stopped: left cleanly. */
    state: Type.Union([Type.Literal('alive'), Type.Literal('dead'), Type.Literal('stopped')]),
    stoppedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    stopReason: Type.Union([Type.String(), Type.Null()]),
    /** Devices whose presence row says connected to this node (0 unless alive). */
    connectedDevices: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type ClusterNode = Static<typeof ClusterNode>;

export const ClusterNodeList = Type.Object(
  {
    /** The node that answered. */
    self: Type.String(),
    /** 'local': a single node; 'nats': a cluster on NATS; 'ipc': the workers of `serve --workers N`. */
    bus: Type.Union([Type.Literal('local'), Type.Literal('nats'), Type.Literal('ipc')]),
    busConnected: Type.Boolean(),
    nodes: Type.Array(ClusterNode),
  },
  { additionalProperties: false },
);
export type ClusterNodeList = Static<typeof ClusterNodeList>;
