// Fleetkey server for bench/gateway, in its own process so the load generator never shares its
// event loop. Started by run.mjs with IPC; answers { id, op } messages. Exits when its parent goes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, loadConfig } from '@fleetkey/server';

const dataDir = process.argv[2];
if (dataDir === undefined || process.send === undefined) throw new Error('usage: server-child.mjs DATA_DIR (with an IPC channel)');

const config = loadConfig({ env: { FLEETKEY_LOG_LEVEL: 'silent' }, overrides: { dataDir, port: 0, host: '127.0.0.1' } });
config.deviceHttp.port = 0;
config.gateway.port = 0;
// The bench provisions thousands of devices from one address in seconds: the default per-source
// limit (600/min) is right for a real factory, not for setup.
config.provisioning.perSourcePerMinute = 10_000_000;
config.provisioning.perSourceBurst = 1_000_000;
const server = await createServer(config);

const settle = async () => {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await new Promise((r) => setTimeout(r, 100));
  }
};

const ops = {
  info: async () => ({
    url: server.url,
    deviceUrl: server.deviceUrl,
    mqttPort: server.gateway?.address().port,
    adminToken: readFileSync(join(dataDir, 'admin.token'), 'utf8').trim(),
    pid: process.pid,
  }),
  // The server's TLS identity (issued by our CA for localhost/127.0.0.1): Mosquitto reuses it.
  tls: async () => ({ keyPem: server.ca.tls.keyPem, chainPem: server.ca.tls.chainPem }),
  stats: async () => server.gateway?.stats(),
  // What the store holds: the figure for "accepted and stored", not what the gateway read.
  stored: async () => Number((await server.store.db.selectFrom('telemetry').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n),
  gc: async () => {
    await settle();
    return process.memoryUsage();
  },
  close: async () => {
    await server.close();
    return true;
  },
};

process.on('message', async ({ id, op }) => {
  try {
    process.send({ id, ok: true, value: await ops[op]() });
  } catch (e) {
    process.send({ id, ok: false, error: String(e?.stack ?? e) });
  }
  if (op === 'close') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
process.send({ ready: true });
