import cluster from 'node:cluster';
import { createServer as netServer } from 'node:net';
import { createServer, relayWorkerBus, type FleetkeyConfig } from '@fleetkey/server';

/**
 * `fleetkey serve --workers N` (issue 15): N identical gateway + HTTP workers on one machine,
 * sharing the listening sockets through node:cluster (the primary accepts and hands connections to
 * the workers round-robin, so TLS handshakes and MQTT packets use every core). Each worker is a
 * node of the cluster: with `--cluster` they talk over NATS like separate machines; without it
 * over the primary's IPC (same messages, same store fallback). PostgreSQL only: several
 * processes writing one SQLite file would serialise on its lock.
 */
export const WORKER_ENV = 'FLEETKEY_WORKER';

export interface WorkerSetup {
  index: number;
  ports: { http: number; device: number; mqtt: number };
}

/** In a worker: what the primary decided (its index and the concrete ports). */
export function workerSetup(): WorkerSetup | null {
  if (!cluster.isWorker) return null;
  const raw = process.env[WORKER_ENV];
  return raw === undefined ? null : (JSON.parse(raw) as WorkerSetup);
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = netServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a !== null ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * The primary: initialises the data dir and the database once (CA, admin token), fixes the ports
 * (node:cluster would give every `listen(0)` of a worker the same port), forks the workers,
 * relays their bus, restarts a worker that dies, and stops them all on SIGINT/SIGTERM.
 */
export async function runPrimary(config: FleetkeyConfig, workers: number, onReady: (urls: { url: string; deviceUrl: string; mqttUrl: string | null }, bootstrapAdminToken: string | null) => void): Promise<void> {
  const init = await createServer(config, { listen: false });
  const bootstrapAdminToken = init.bootstrapAdminToken;
  await init.close();
  const ports = {
    http: config.http.port === 0 ? await freePort(config.http.host) : config.http.port,
    device: config.deviceHttp.port === 0 ? await freePort(config.deviceHttp.host) : config.deviceHttp.port,
    mqtt: config.gateway.port === 0 ? await freePort(config.gateway.host) : config.gateway.port,
  };
  relayWorkerBus(cluster);
  let stopping = false;
  let ready = 0;
  const fork = (index: number) => {
    const w = cluster.fork({ [WORKER_ENV]: JSON.stringify({ index, ports } satisfies WorkerSetup) });
    w.on('message', (m: { fleetkeyReady?: { url: string; deviceUrl: string; mqttUrl: string | null } }) => {
      if (m.fleetkeyReady === undefined) return;
      if (++ready === workers) onReady(m.fleetkeyReady, bootstrapAdminToken);
    });
    w.on('exit', (code, signal) => {
      if (stopping) return;
      process.stderr.write(`fleetkey: worker ${index} exited (${signal ?? code}); restarting it\n`);
      setTimeout(() => fork(index), 500).unref();
    });
  };
  for (let i = 0; i < workers; i++) fork(i);
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`fleetkey: ${signal}, stopping ${workers} workers\n`);
    const all = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
    let left = all.length;
    if (left === 0) process.exit(0);
    for (const w of all) {
      w.once('exit', () => --left === 0 && process.exit(0));
      w.process.kill('SIGTERM');
    }
    setTimeout(() => process.exit(1), 15_000).unref();
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}
