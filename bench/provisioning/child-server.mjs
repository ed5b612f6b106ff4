#!/usr/bin/env node
// The Fleetkey server for bench/provisioning, in its own process (the bench's devices run in the
// parent): node child-server.mjs <dataDir>. Prints one JSON line {url, deviceUrl} when listening;
// closes on SIGTERM.
import { createServer, loadConfig } from '@fleetkey/server';

const dataDir = process.argv[2];
const config = loadConfig({ env: { FLEETKEY_LOG_LEVEL: 'silent' }, overrides: { dataDir, port: 0, host: '127.0.0.1' } });
config.deviceHttp = { host: '127.0.0.1', port: 0 };
const server = await createServer(config);
process.stdout.write(`${JSON.stringify({ url: server.url, deviceUrl: server.deviceUrl })}\n`);
process.once('SIGTERM', () => {
  server.close().then(() => process.exit(0), () => process.exit(1));
});
