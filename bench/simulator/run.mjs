#!/usr/bin/env node
// bench/simulator: the reconnect storm of `fleetkey simulate --storm`, against Fleetkey's gateway
// and, as the baseline in the same run, against Mosquitto 2.0 with the same CA, the same device
// certificates and the same simulator. Every link is cut at once; each device comes back with the
// device SDK's full-jitter backoff (1 s base). Figures: median [min–max] over the runs.
// Usage: node bench/simulator/run.mjs [--quick] [--json] [--runs N] [--devices N]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { operatorApi, startFleetkey, startMosquitto } from '../gateway/setup.mjs';
import { scratch } from '../lib/scratch.mjs';

const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(name);
  return i === -1 ? dflt : Number(args[i + 1]);
};
const quick = args.includes('--quick');
const asJson = args.includes('--json');
const P = { runs: flag('--runs', 3), devices: flag('--devices', quick ? 200 : 2000), concurrency: 32, stormAfter: quick ? '1s' : '2s', stormTimeout: '3m' };
const BIN = fileURLToPath(new URL('../../packages/cli/bin/fleetkey.js', import.meta.url));
const log = (...m) => console.error('[bench/simulator]', ...m); // progress on stderr; stdout holds only the result

const { dir, children, stop } = scratch('fleetkey-bench-sim-');

/** Runs the fleetkey CLI (one connection per device: the descriptor limit is raised where allowed). */
function fleetkey(argv, env) {
  return new Promise((resolve, reject) => {
    const quoted = [BIN, ...argv].map((a) => `'${a}'`).join(' ');
    const child = spawn('bash', ['-c', `ulimit -n 20000 2>/dev/null; exec "${process.execPath}" ${quoted}`], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      err += d;
      // The simulator's live progress, passed on for whoever watches the bench.
      for (const line of String(d).split('\n')) if (/storm|connecting|provisioning|manufactured \d+\/\d+ \(100%\)/.test(line)) log(line.replace(/^fleetkey: /, ''));
    });
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`fleetkey ${argv[0]} exited ${code}: ${err.slice(-2000)}`))));
  });
}

const stats = (xs) => {
  const s = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (s.length === 0) return null;
  return { median: s[Math.floor((s.length - 1) / 2)], min: s[0], max: s[s.length - 1] };
};

log(`${P.devices} devices, ${P.runs} runs per broker${quick ? ' (quick)' : ''}`);
const fk = await startFleetkey(join(dir, 'fleetkey'));
children.push(fk.child);
const env = { FLEETKEY_URL: fk.info.url, FLEETKEY_TOKEN: fk.info.adminToken };
const api = operatorApi(fk.info);
const e = await api('POST', '/v1/enrollments', { label: 'bench simulator', kind: 'group', attestation: 'x509', certificateValidity: '2d' });
if (e.status !== 201) throw new Error(`enrollment: ${e.status} ${JSON.stringify(e.body)}`);
const bundles = join(dir, 'bundles');
// Factory and first boot through the real paths, once: the runs reuse the provisioned bundles.
await fleetkey(['manufacture', '--count', String(P.devices), '--out', bundles, '--enrollment', e.body.enrollment.id, '--provisioning-url', fk.info.deviceUrl, '--concurrency', '16', '--json'], env);
await fleetkey(['simulate', '--devices', String(P.devices), '--bundles', bundles, '--concurrency', String(P.concurrency), '--rate', '0', '--duration', '100ms', '--json'], env);

let mosquitto;
let noMosquitto;
try {
  mosquitto = await startMosquitto(dir, { bundlePem: fk.bundlePem, tls: await fk.call('tls'), subscriberId: 'bench-unused' });
  children.push(mosquitto.child);
} catch (err) {
  noMosquitto = String(err?.message ?? err);
  log(`no Mosquitto baseline: ${noMosquitto}`);
}

/** One storm: connect every device, a short steady phase, cut every link, watch them come back. */
async function storm(mqttUrl) {
  const out = await fleetkey(
    ['simulate', '--devices', String(P.devices), '--bundles', bundles, '--concurrency', String(P.concurrency), '--rate', '0', '--duration', '1s', '--storm', '--storm-after', P.stormAfter, '--storm-timeout', P.stormTimeout, ...(mqttUrl === undefined ? [] : ['--mqtt-url', mqttUrl]), '--json'],
    env,
  );
  const s = JSON.parse(out).storm;
  if (s === null) throw new Error('the simulator reported no storm');
  return {
    successRate: s.successRate,
    attemptSuccessRate: s.attemptSuccessRate,
    timeTo99Ms: s.timeTo99Ms,
    timeTo100Ms: s.timeTo100Ms,
    connackP50Ms: s.connackMs.p50,
    connackP99Ms: s.connackMs.p99,
    refusals: Object.values(s.refusals).reduce((a, b) => a + b, 0),
    refusalsByReason: s.refusals,
    failedAttempts: s.failedAttempts,
    simulatorLoopDelayP99Ms: s.simulatorLoopDelayMs.p99,
  };
}

const runs = { fleetkey: [], mosquitto: [] };
for (let r = 1; r <= P.runs; r++) {
  // Alternate which broker goes first so drift in the machine does not favour one of them.
  const order = r % 2 === 1 ? ['fleetkey', 'mosquitto'] : ['mosquitto', 'fleetkey'];
  for (const broker of order) {
    if (broker === 'mosquitto' && mosquitto === undefined) continue;
    log(`run ${r}/${P.runs}: ${broker}`);
    runs[broker].push(await storm(broker === 'mosquitto' ? `mqtts://127.0.0.1:${mosquitto.port}` : undefined));
  }
}
await fk.call('close').catch(() => undefined);

const FIGURES = [
  ['devices back (success rate)', 'successRate', (v) => `${(v * 100).toFixed(2)}%`],
  ['connect attempts that succeeded', 'attemptSuccessRate', (v) => `${(v * 100).toFixed(2)}%`],
  ['time until 99% back', 'timeTo99Ms', (v) => `${Math.round(v)} ms`],
  ['time until 100% back', 'timeTo100Ms', (v) => `${Math.round(v)} ms`],
  ['CONNACK p50 during the storm', 'connackP50Ms', (v) => `${v.toFixed(1)} ms`],
  ['CONNACK p99 during the storm', 'connackP99Ms', (v) => `${v.toFixed(1)} ms`],
  ['refusals', 'refusals', (v) => String(v)],
  ['simulator event-loop delay p99', 'simulatorLoopDelayP99Ms', (v) => `${v.toFixed(1)} ms`],
];
const summary = Object.fromEntries(Object.entries(runs).map(([b, rs]) => [b, Object.fromEntries(FIGURES.map(([, k]) => [k, stats(rs.map((x) => x[k]))]))]));
const cell = (s, fmt) => (s === null ? 'n/a' : s.min === s.max ? fmt(s.median) : `${fmt(s.median)} [${fmt(s.min)}–${fmt(s.max)}]`);
const ratio = (k) => {
  const a = summary.fleetkey[k]?.median;
  const b = summary.mosquitto[k]?.median;
  return typeof a === 'number' && typeof b === 'number' && b !== 0 ? `${(a / b).toFixed(2)}×` : '—';
};

if (asJson) {
  process.stdout.write(`${JSON.stringify({ params: P, mosquitto: noMosquitto === undefined ? 'measured' : `not measured: ${noMosquitto}`, summary, runs }, null, 2)}\n`);
} else {
  const lines = [
    `Reconnect storm: ${P.devices} devices connected over mTLS (MQTT 5, the device SDK), every link cut at once, each device back with full-jitter backoff (base 1 s); no messages sent. Median [min–max] over ${P.runs} runs; one simulator process for both brokers.`,
    '',
    '| figure | Fleetkey | Mosquitto 2.0 (baseline) | Fleetkey ÷ Mosquitto |',
    '| --- | --- | --- | --- |',
    ...FIGURES.map(([label, k, fmt]) => `| ${label} | ${cell(summary.fleetkey[k], fmt)} | ${cell(summary.mosquitto[k], fmt)} | ${k === 'refusals' || k === 'simulatorLoopDelayP99Ms' ? '—' : ratio(k)} |`),
  ];
  if (noMosquitto !== undefined) lines.push('', `Mosquitto baseline not measured: ${noMosquitto}`);
  const reasons = [...new Set(runs.fleetkey.flatMap((x) => Object.keys(x.refusalsByReason)))];
  if (reasons.length > 0) lines.push('', `Fleetkey refusals by reason: ${reasons.join(', ')}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
await stop();
process.exit(0);
