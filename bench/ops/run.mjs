#!/usr/bin/env node
// bench/ops: what metrics cost the gateway's hot path. The same server is run with
// `metrics.enabled` true (and /metrics scraped every second, 15× Prometheus' default rate) and
// false, alternating, on one machine and one store; each run measures QoS 1 PUBLISHes/s
// acknowledged (each stored in SQLite before its PUBACK) from 8 devices over mTLS.
// Usage: node bench/ops/run.mjs [--quick] [--json]   (needs `npm run build`)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { createServer, loadConfig } from '@fleetkey/server';
import { provisionDevices } from '../gateway/setup.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const asJson = args.includes('--json');
const RUNS = quick ? 1 : 3;
const SECONDS = quick ? 2 : 6;
const DEVICES = 8;
const IN_FLIGHT = 256;

async function oneRun(metricsEnabled) {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-bench-ops-'));
  const config = loadConfig({ env: { FLEETKEY_LOG_LEVEL: 'silent' }, overrides: { dataDir: dir, port: 0, devicePort: 0, mqttPort: 0 } });
  config.metrics.enabled = metricsEnabled;
  config.gateway.maxPublishesPerSecond = 1_000_000;
  const server = await createServer(config);
  const token = (await server.services.tokens.create({ actor: { kind: 'system', label: 'bench' }, requestId: 'bench', remoteAddress: null }, 'admin', 'bench')).secret;
  const clients = [];
  try {
    // Provisioned through the real path (IDevID, mTLS provisioning): only provisioned devices connect.
    const bundlePem = readFileSync(join(dir, 'ca-bundle.pem'), 'utf8');
    const devices = await provisionDevices({ info: { url: server.url, adminToken: token, deviceUrl: server.deviceUrl }, bundlePem }, DEVICES, 4);
    for (const d of devices) {
      clients.push({ id: d.id, client: await mqtt.connectAsync(server.mqttUrl, { clientId: d.id, key: d.keyPem, cert: d.certPem, ca: bundlePem, protocolVersion: 5, reconnectPeriod: 0 }) });
    }
    let acked = 0;
    let stop = false;
    const scrape = metricsEnabled
      ? setInterval(() => {
          void fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.text());
        }, 1000)
      : null;
    const started = performance.now();
    await Promise.all(
      clients.flatMap(({ id, client }) =>
        Array.from({ length: IN_FLIGHT / DEVICES }, async () => {
          while (!stop) {
            await client.publishAsync(`devices/${id}/telemetry`, '{"t":1.5,"rpm":1200}', { qos: 1 });
            acked++;
            if (performance.now() - started > SECONDS * 1000) stop = true;
          }
        }),
      ),
    );
    const elapsed = (performance.now() - started) / 1000;
    if (scrape !== null) clearInterval(scrape);
    return acked / elapsed;
  } finally {
    for (const c of clients) await c.client.endAsync().catch(() => undefined);
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const on = [];
const off = [];
for (let r = 0; r < RUNS; r++) {
  // Alternating, off first: a warming machine favours neither side.
  off.push(await oneRun(false));
  on.push(await oneRun(true));
  process.stderr.write(`run ${r + 1}: metrics off ${off.at(-1).toFixed(0)} msgs/s, on ${on.at(-1).toFixed(0)} msgs/s\n`);
}
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const result = { runs: RUNS, seconds: SECONDS, devices: DEVICES, inFlight: IN_FLIGHT, metricsOff: Math.round(med(off)), metricsOn: Math.round(med(on)), ratio: Number((med(on) / med(off)).toFixed(3)) };
if (asJson) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
else {
  process.stdout.write(
    [
      `QoS 1 PUBLISHes/s acknowledged after their commit (SQLite), ${DEVICES} devices, ${IN_FLIGHT} in flight, ${SECONDS} s per run, median of ${RUNS} alternating runs:`,
      '',
      '| metrics | msgs/s (median) | runs | ratio to off |',
      '| --- | --- | --- | --- |',
      `| off (baseline) | ${result.metricsOff} | ${off.map((x) => x.toFixed(0)).join(', ')} | 1.00 |`,
      `| on, scraped every second | ${result.metricsOn} | ${on.map((x) => x.toFixed(0)).join(', ')} | ${result.ratio.toFixed(2)} |`,
      '',
    ].join('\n'),
  );
}
