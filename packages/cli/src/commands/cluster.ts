import type { ClusterNodeList } from '@fleetkey/protocol';
import { Command } from 'commander';
import { Client, type GlobalOptions } from '../client.js';
import { emit, table } from '../output.js';

export function clusterCommand(): Command {
  const cmd = new Command('cluster').description('the nodes of a Fleetkey cluster (issue 15)');
  cmd
    .command('nodes')
    .description('list the nodes, their heartbeats and how many devices each holds')
    .action(async (_o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<ClusterNodeList>('GET', '/v1/cluster/nodes');
      emit(g, r, () =>
        [
          `bus: ${r.bus}${r.bus === 'nats' ? (r.busConnected ? ' (connected)' : ' (DISCONNECTED: store polling)') : ''}; answered by ${r.self}`,
          table(['NODE', 'STATE', 'DEVICES', 'HEARTBEAT', 'HOST', 'PID', 'MQTT'], r.nodes.map((n) => [n.id, n.state, n.connectedDevices, n.heartbeatAt, n.host, n.pid, n.endpoints.mqttUrl ?? '-'])),
        ].join('\n'),
      );
    });
  return cmd;
}
