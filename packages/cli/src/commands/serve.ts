import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { createServer, loadConfig } from '@fleetkey/server';
import { Command } from 'commander';
import type { GlobalOptions } from '../client.js';
import { runPrimary, workerSetup } from './serve-workers.js';

export function serveCommand(): Command {
  return new Command('serve')
    .description('run the Fleetkey server (SQLite under ./fleetkey-data unless DATABASE_URL is set)')
    .option('--data-dir <dir>', 'data directory (FLEETKEY_DATA_DIR)')
    .option('--config <file>', 'config file (default <data-dir>/fleetkey.json when present)')
    .option('--host <host>', 'listen address (default 127.0.0.1)')
    .option('--port <port>', 'listen port (default 8400)', (v) => Number.parseInt(v, 10))
    .option('--device-port <port>', 'device-plane HTTPS port (default 8443)', (v) => Number.parseInt(v, 10))
    .option('--mqtt-port <port>', 'MQTT over TLS port (default 8883)', (v) => Number.parseInt(v, 10))
    .option('--database-url <url>', 'postgres://… to use PostgreSQL (DATABASE_URL)')
    .option('--cluster <url>', 'join the cluster on this NATS server, nats://HOST:4222 (FLEETKEY_CLUSTER; needs PostgreSQL)')
    .option('--node-id <id>', 'this node\'s id in the cluster (default: host-pid-random)')
    .option('--workers <n>', 'gateway + HTTP worker processes sharing the ports (default: the number of cores with PostgreSQL, 1 with SQLite)', (v) => Number.parseInt(v, 10))
    .action(async (o: { dataDir?: string; config?: string; host?: string; port?: number; devicePort?: number; mqttPort?: number; databaseUrl?: string; cluster?: string; nodeId?: string; workers?: number }, c: Command) => {
      // The program declares --data-dir too, and commander gives an option to the first command
      // that declares it wherever it stands: read both, or the flag is silently ignored and a
      // second CA and admin token appear in ./fleetkey-data (issue 11 item 14).
      const dataDir = o.dataDir ?? c.optsWithGlobals<GlobalOptions>().dataDir;
      const config = loadConfig({
        file: o.config,
        overrides: {
          ...(dataDir === undefined ? {} : { dataDir }),
          ...(o.host === undefined ? {} : { host: o.host }),
          ...(o.port === undefined ? {} : { port: o.port }),
          ...(o.databaseUrl === undefined ? {} : { databaseUrl: o.databaseUrl }),
          ...(o.devicePort === undefined ? {} : { devicePort: o.devicePort }),
          ...(o.mqttPort === undefined ? {} : { mqttPort: o.mqttPort }),
          ...(o.cluster === undefined ? {} : { clusterUrl: o.cluster }),
        },
      });
      if (o.nodeId !== undefined) config.cluster.nodeId = o.nodeId;
      const postgres = config.databaseUrl !== undefined;
      if (o.workers !== undefined && (!Number.isInteger(o.workers) || o.workers < 1 || o.workers > 256)) c.error('error: --workers must be an integer from 1 to 256', { exitCode: 2 });
      if ((o.workers ?? 1) > 1 && !postgres) c.error('error: --workers above 1 needs PostgreSQL (DATABASE_URL): several processes cannot share one SQLite file', { exitCode: 2 });
      const workers = o.workers ?? (postgres ? availableParallelism() : 1);
      const worker = workerSetup();
      if (worker === null && workers > 1) {
        await runPrimary(config, workers, (urls, token) => {
          if (token !== null) process.stdout.write(`\nAdmin API token (shown once; also saved with mode 0600 to ${join(config.dataDir, 'admin.token')}):\n${token}\n\n`);
          process.stderr.write(`fleetkey: device plane on ${urls.deviceUrl}\n`);
          if (urls.mqttUrl !== null) process.stderr.write(`fleetkey: MQTT gateway on ${urls.mqttUrl}\n`);
          process.stderr.write(`fleetkey: listening on ${urls.url} (PostgreSQL, ${workers} workers, data ${config.dataDir})\n`);
        });
        return;
      }
      if (worker !== null) {
        config.http.port = worker.ports.http;
        config.deviceHttp.port = worker.ports.device;
        config.gateway.port = worker.ports.mqtt;
        config.cluster.nodeId = `${(o.nodeId ?? config.cluster.nodeId ?? 'w').slice(0, 48)}-w${worker.index}-${process.pid}`;
        const server = await createServer(config, { workerBus: config.cluster.url === undefined });
        process.send?.({ fleetkeyReady: { url: server.url, deviceUrl: server.deviceUrl, mqttUrl: server.mqttUrl } });
        process.once('SIGTERM', () => void server.close().then(() => process.exit(0), () => process.exit(1)));
        process.once('SIGINT', () => undefined); // the primary decides
        return;
      }
      const server = await createServer(config);
      const store = server.store.dialect === 'sqlite' ? `SQLite ${join(config.dataDir, 'fleetkey.db')}` : 'PostgreSQL';
      if (server.bootstrapAdminToken !== null) {
        // Printed exactly once, on the start that created it; the 0600 file lets the CLI on this
        // machine use it without the operator copying it around.
        process.stdout.write(
          `\nAdmin API token (shown once; also saved with mode 0600 to ${join(config.dataDir, 'admin.token')}):\n${server.bootstrapAdminToken}\n\n`,
        );
      }
      process.stderr.write(`fleetkey: device plane on ${server.deviceUrl}\n`);
      if (server.mqttUrl !== null) process.stderr.write(`fleetkey: MQTT gateway on ${server.mqttUrl}\n`);
      process.stderr.write(`fleetkey: listening on ${server.url} (${store}, data ${config.dataDir})\n`);
      if (server.cluster?.clustered === true) process.stderr.write(`fleetkey: cluster node ${server.cluster.nodeId} on ${new URL(config.cluster.url ?? '').host}\n`);
      const stop = (signal: string) => {
        process.stderr.write(`fleetkey: ${signal}, shutting down\n`);
        server.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
}
