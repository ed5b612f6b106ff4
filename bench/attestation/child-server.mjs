#!/usr/bin/env node
// The Fleetkey server for bench/attestation in its own process (so its CPU is measured apart from
// the simulated devices): node child-server.mjs <dataDir>. Prints {url, deviceUrl, pid} when
// listening; closes on SIGTERM.
import { createServer, loadConfig } from '@fleetkey/server';

const dataDir = process.argv[2];
const config = loadConfig({ env: { FLEETKEY_LOG_LEVEL: 'silent' }, overrides: { dataDir, port: 0, host: '127.0.0.1' } });
config.deviceHttp = { ...config.deviceHttp, host: '127.0.0.1', port: 0 };
config.gateway.enabled = false;
// The bench drives many devices from one source address: the operator plane's limits are not what is measured.
config.http.rateLimit = { ...config.http.rateLimit, perSourcePerMinute: 1_000_000, perSourceBurst: 100_000, perTokenPerMinute: 1_000_000, perTokenBurst: 100_000 };
const server = await createServer(config);
process.stdout.write(`${JSON.stringify({ url: server.url, deviceUrl: server.deviceUrl, pid: process.pid })}\n`);
process.once('SIGTERM', () => {
  server.close().then(() => process.exit(0), () => process.exit(1));
});
