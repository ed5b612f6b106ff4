#!/usr/bin/env node
// bench/gateway: Fleetkey's MQTT gateway next to Mosquitto 2.0, in one run, with one load generator
// (bench/gateway/loadgen.mjs, its own process) and the same device certificates for both brokers.
// Usage: node bench/gateway/run.mjs [--quick | --smoke] [--json]   (README.md says what each figure is)
import { fork } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ipcClient, provisionDevices, startFleetkey, startMosquitto } from './setup.mjs';
import { createPgDb, startServe } from './workers.mjs';
import { scratch } from '../lib/scratch.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const asJson = args.includes('--json');
const smoke = args.includes('--smoke');
const P = smoke
  ? { runs: 1, devices: 200, idle: 200, connectSeconds: 1, concurrency: 16, pubSeconds: 2, publishers: 20, revokeConnected: 100, revokes: 10, workers: 2 }
  : quick
  ? { runs: 3, devices: 2000, idle: 2000, connectSeconds: 3, concurrency: 32, pubSeconds: 3, publishers: 200, revokeConnected: 1000, revokes: 40, workers: 2 }
  : { runs: 3, devices: 10_000, idle: 10_000, connectSeconds: 6, concurrency: 32, pubSeconds: 6, publishers: 200, revokeConnected: 1000, revokes: 150, workers: 2 };
// Per publishing device: under the gateway's default per-device limit (1,000 PUBLISH/s), which a
// burst-free sender never trips; 64 = the Receive Maximum both brokers get for QoS 1.
const PUB = { perClientRate: 900, window: 64, payloadBytes: 64 };
const log = (...m) => console.error('[bench/gateway]', ...m); // progress on stderr; stdout holds only the result

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { median: q(0.5), min: s[0], max: s[s.length - 1] };
};
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
};
const procStatus = (pid) => readFileSync(`/proc/${pid}/status`, 'utf8');
const rssBytes = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(procStatus(pid))[1]) * 1024;
/** CPU seconds (user + system) of a process, from /proc/PID/stat (clock ticks of 1/100 s). */
const cpuSeconds = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const { dir, children, cleanup, stop } = scratch('fleetkey-bench-gw-');
/** Async cleanups (the scratch PostgreSQL database), run at the end, also on failure. */
const cleanups = [];
const runCleanups = async () => {
  for (const f of cleanups.splice(0)) await f().catch(() => {});
};

async function startLoadgen(credFile) {
  const child = fork(fileURLToPath(new URL('./loadgen.mjs', import.meta.url)), [credFile], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  await new Promise((resolve, reject) => {
    child.once('exit', (c) => reject(new Error(`load generator exited (${c})`)));
    child.once('message', resolve);
  });
  return ipcClient(child, 300_000);
}

/** The bare Node TLS server (node-tls-child.mjs): Node's own floor for connects and memory. */
async function startNodeTls(identity) {
  const child = fork(fileURLToPath(new URL('./node-tls-child.mjs', import.meta.url)), [JSON.stringify(identity)], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  const ready = await new Promise((resolve, reject) => {
    child.once('exit', (c) => reject(new Error(`node TLS baseline exited (${c})`)));
    child.once('message', resolve);
  });
  return { child, port: ready.port, pid: child.pid, call: ipcClient(child) };
}

/**
 * One publish measurement. QoS 0: what the broker landed — Fleetkey's gateway counters (read −
 * refused − still pending − failed = stored, counted only once the store committed), Mosquitto's
 * deliveries at the counting subscriber — divided by the time from the first publish to the last
 * landed message (sampling during the load is no option: an overloaded Fleetkey answers late).
 * QoS 1: PUBACKs the publishers received within the send window. The telemetry rows are counted
 * afterwards as a check on Fleetkey's counter.
 */
async function publishPhase(name, b, qos, { fk, subGen, gen }) {
  if (name === 'workers') {
    // `--workers 2`: QoS 1 only (PUBACKs the publishers received, each sent after the commit);
    // the rows in PostgreSQL are counted afterwards as the check.
    const rowsBefore = await b.stored();
    const r = await b.gen('publish', { port: b.port, from: 0, clients: P.publishers, qos, seconds: P.pubSeconds, ...PUB });
    await sleep(500);
    const windowSecs = (r.sentAt - r.startedAt) / 1000;
    return { rate: r.ackedAtDeadline / windowSecs, offered: r.sent / windowSecs, check: `rows stored ${(await b.stored()) - rowsBefore} (PUBACKs ${r.acked ?? r.ackedAtDeadline})`, dropped: r.droppedConnections };
  }
  const sample = async () => {
    if (name === 'mosquitto') return (await subGen('subCount')).count;
    const s = await fk.call('stats');
    return s.messagesIn - s.messagesRefused - s.pendingStores - s.storeFailures;
  };
  const rowsBefore = name === 'fleetkey' ? await fk.call('stored') : 0;
  const in0 = await sample();
  const r = await gen('publish', { port: b.port, from: 0, clients: P.publishers, qos, seconds: P.pubSeconds, ...PUB });
  // Until the broker has drained what it read: the time of the last change is when it finished
  // (Mosquitto: the subscriber's own timestamp of its last delivery).
  let prev = -1;
  let lastChangeAt = Date.now();
  for (let k = 0; k < 300; k++) {
    const n = await sample();
    if (n === prev) break;
    prev = n;
    lastChangeAt = name === 'mosquitto' ? (await subGen('subCount')).lastAt : Date.now();
    await sleep(100);
  }
  const landed = prev - in0;
  const brokerRate = (landed * 1000) / (Math.max(lastChangeAt, r.sentAt) - r.startedAt);
  let check;
  if (name === 'fleetkey') {
    const rows = (await fk.call('stored')) - rowsBefore;
    check = `rows stored ${rows} (counter ${landed})`;
  } else check = `delivered ${landed} of ${r.sent} sent`;
  const windowSecs = (r.sentAt - r.startedAt) / 1000;
  return { rate: qos === 1 ? r.ackedAtDeadline / windowSecs : brokerRate, offered: r.sent / windowSecs, check, dropped: r.droppedConnections };
}

async function main() {
  const t0 = Date.now();
  // ---- Setup: Fleetkey (SQLite) in its own process, N devices through the real provisioning path.
  // Fleetkey as `fleetkey serve --workers 2` on a scratch PostgreSQL database: its own data dir
  // (so its own CA) and its own devices, provisioned the same way and at the same time as the
  // single process's (setup only); a third load generator process (same code) holds their keys.
  const pgDb = await createPgDb('fk_bench_gw_workers');
  cleanups.push(() => pgDb.drop());
  const workersDir = join(dir, 'workers', 'data');
  mkdirSync(join(dir, 'workers'));
  const serveWorkers = () => startServe(workersDir, pgDb.url, ['--workers', String(P.workers)], { children });
  const workersSetup = (async () => {
    const fw = await serveWorkers();
    log(`fleetkey serve --workers ${P.workers} up (pids ${fw.pids().join(', ')}); provisioning ${P.devices} devices…`);
    const t1 = Date.now();
    const wDevices = await provisionDevices(fw, P.devices);
    log(`--workers: provisioned in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    return { fw, wDevices };
  })();
  workersSetup.catch(() => {});
  let fk = await startFleetkey(join(dir, 'fleetkey'));
  children.push(fk.child);
  log(`Fleetkey up (pid ${fk.info.pid}); provisioning ${P.devices + 1} devices…`);
  const devices = await provisionDevices(fk, P.devices + 1);
  const subscriber = devices.length - 1; // the extra device: Mosquitto's counting subscriber
  log(`provisioned in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const credFile = join(dir, 'creds.json');
  writeFileSync(credFile, JSON.stringify({ caPem: fk.bundlePem, devices }), { mode: 0o600 });
  mkdirSync(join(dir, 'mosquitto'));
  const mqOpts = { bundlePem: fk.bundlePem, tls: await fk.call('tls'), subscriberId: devices[subscriber].id };
  let mq = await startMosquitto(join(dir, 'mosquitto'), mqOpts);
  children.push(mq.child);
  const nodeTlsIdentity = { keyPem: mqOpts.tls.keyPem, chainPem: mqOpts.tls.chainPem, caPem: fk.bundlePem };
  let nt = await startNodeTls(nodeTlsIdentity);
  const genSqlite = await startLoadgen(credFile);
  const subGen = await startLoadgen(credFile);

  let { fw, wDevices } = await workersSetup;
  const wCredFile = join(dir, 'creds-workers.json');
  writeFileSync(wCredFile, JSON.stringify({ caPem: fw.bundlePem, devices: wDevices }), { mode: 0o600 });
  const wGen = await startLoadgen(wCredFile);
  await subGen('subscribe', { port: mq.port, index: subscriber });

  // A fresh broker process before each memory reading: freed memory stays in a process's RSS
  // (allocator), so a second reading on the same process would count reuse, not growth.
  const brokers = {
    fleetkey: {
      port: fk.info.mqttPort,
      pid: fk.info.pid,
      settle: () => fk.call('gc'),
      restart: async () => {
        await fk.call('close').catch(() => {});
        await new Promise((r) => (fk.child.exitCode === null ? fk.child.once('exit', r) : r()));
        fk = await startFleetkey(join(dir, 'fleetkey'));
        children.push(fk.child);
        Object.assign(brokers.fleetkey, { port: fk.info.mqttPort, pid: fk.info.pid });
      },
    },
    mosquitto: {
      port: mq.port,
      pid: mq.pid,
      settle: () => sleep(300),
      restart: async () => {
        const exited = new Promise((r) => mq.child.once('exit', r));
        mq.child.kill('SIGTERM');
        await exited;
        mq = await startMosquitto(join(dir, 'mosquitto'), mqOpts);
        children.push(mq.child);
        Object.assign(brokers.mosquitto, { port: mq.port, pid: mq.pid });
        await subGen('subscribe', { port: mq.port, index: subscriber });
      },
    },
  };
  // Node's own TLS: connects and memory only (it stores nothing, so it has no publish figures).
  brokers.nodeTls = {
    port: nt.port,
    pid: nt.pid,
    settle: () => nt.call('gc'),
    restart: async () => {
      const exited = new Promise((r) => nt.child.once('exit', r));
      nt.child.kill('SIGTERM');
      await exited;
      nt = await startNodeTls(nodeTlsIdentity);
      Object.assign(brokers.nodeTls, { port: nt.port, pid: nt.pid });
    },
  };
  // Sums over the primary and its workers (each is a process with its own heap and TLS state).
  brokers.workers = {
    port: fw.info.mqttPort,
    gen: wGen,
    rss: () => fw.pids().reduce((n, pid) => n + rssBytes(pid), 0),
    cpu: () => fw.pids().reduce((n, pid) => n + cpuSeconds(pid), 0),
    settle: () => sleep(1000),
    stored: async () => Number((await pgDb.query('select count(*) as n from telemetry'))[0].n),
    restart: async () => {
      await fw.stop();
      fw = await serveWorkers();
      Object.assign(brokers.workers, { port: fw.info.mqttPort });
    },
  };
  const empty = () => ({ connects: [], connectCpu: [], memPerConn: [], qos0: [], qos0Sent: [], qos1: [], connectCpuMs: [] });
  const R = { fleetkey: empty(), mosquitto: empty(), nodeTls: empty(), workers: empty() };

  // Runs alternate the brokers so drift on a shared machine hits both alike.
  for (let run = 1; run <= P.runs; run++) {
    for (const [name, b] of Object.entries(brokers)) {
      const gen = b.gen ?? genSqlite;
      const rss = () => (b.rss ? b.rss() : rssBytes(b.pid));
      const cpu = () => (b.cpu ? b.cpu() : cpuSeconds(b.pid));
      // (2) memory per idle connection
      await b.restart();
      await b.settle();
      const m0 = rss();
      const o = await gen('idleOpen', { port: b.port, from: 0, count: P.idle, concurrency: P.concurrency });
      await b.settle();
      const m1 = rss();
      await gen('idleClose');
      R[name].memPerConn.push((m1 - m0) / o.opened);
      log(`run ${run} ${name}: ${o.opened} idle (${o.failed} failed), ${((m1 - m0) / o.opened / 1024).toFixed(1)} KiB/conn`);
      await sleep(1500);

      // (1) connects/s
      const c0 = cpu();
      const c = await gen('connects', { port: b.port, seconds: P.connectSeconds, concurrency: P.concurrency, from: 0, to: P.devices });
      if (c.connects === 0) throw new Error(`${name}: no connection accepted (${c.firstError})`);
      R[name].connects.push(c.connects / c.seconds);
      const c1 = cpu();
      R[name].connectCpu.push(((c1 - c0) / c.seconds) * 100);
      R[name].connectCpuMs.push(((c1 - c0) * 1000) / c.connects);
      log(`run ${run} ${name}: ${(c.connects / c.seconds).toFixed(0)} connects/s (${c.failed} failed${c.firstError ? `: ${c.firstError}` : ''})`);
      await sleep(1000);

      // (3, 4) QoS 0 then QoS 1
      if (name === 'nodeTls') continue;
      for (const qos of name === 'workers' ? [1] : [0, 1]) {
        const r = await publishPhase(name, b, qos, { fk, subGen, gen });
        R[name][qos === 0 ? 'qos0' : 'qos1'].push(r.rate);
        if (qos === 0) R[name].qos0Sent.push(r.offered);
        log(`run ${run} ${name} QoS ${qos}: ${r.rate.toFixed(0)} msg/s ${name === 'fleetkey' ? 'stored' : 'delivered'}${qos === 1 ? ' (PUBACKs)' : ''}, offered ${r.offered.toFixed(0)}/s, ${r.check}, publishers cut by the broker ${r.dropped}`);
        await sleep(1000);
      }
    }
  }

  // (5) Fleetkey only: revoke → disconnect with 1,000 devices connected (Mosquitto has no such
  // operation: a CRL reload refuses new handshakes but leaves live sessions up).
  const revoke = [];
  const perRun = [];
  let from = P.devices - P.runs * P.revokeConnected > 0 ? P.devices - P.runs * P.revokeConnected : 0;
  let rest = [];
  for (let run = 1; run <= P.runs; run++) {
    const r = await genSqlite('revoke', { port: fk.info.mqttPort, from, connected: P.revokeConnected, revokes: P.revokes, url: fk.info.url, adminToken: fk.info.adminToken });
    revoke.push(...r.latencies);
    perRun.push({ p50: pct(r.latencies, 0.5), p99: pct(r.latencies, 0.99) });
    rest.push(r);
    log(`run ${run} revoke: p50 ${pct(r.latencies, 0.5).toFixed(1)} ms, p99 ${pct(r.latencies, 0.99).toFixed(1)} ms, ${JSON.stringify(r.reasons)}, HTTP mean ${r.httpMeanMs.toFixed(1)} ms, others still connected ${r.stillConnected}/${P.revokeConnected - P.revokes}`);
    // Next run: the revoked devices are gone for good, so shift past them.
    from += P.revokes;
    if (from + P.revokeConnected > P.devices) from = 0;
  }
  const out = summarize(R, revoke, perRun, rest);
  await fk.call('close').catch(() => {});
  await fw.stop();
  return { ...out, seconds: (Date.now() - t0) / 1000 };
}

function summarize(R, revoke, perRun, rest) {
  const f = {};
  for (const [name, r] of Object.entries(R)) f[name] = Object.fromEntries(Object.entries(r).filter(([, xs]) => xs.length > 0).map(([k, xs]) => [k, stats(xs)]));
  const ratio = (k, base = 'mosquitto', of = 'fleetkey') => f[of][k].median / f[base][k].median;
  return {
    mode: smoke ? 'smoke' : quick ? 'quick' : 'full',
    params: { ...P, ...PUB },
    fleetkey: f.fleetkey,
    mosquitto: f.mosquitto,
    nodeTls: { connects: f.nodeTls.connects, connectCpuMs: f.nodeTls.connectCpuMs, memPerConn: f.nodeTls.memPerConn },
    ratios: { connects: ratio('connects'), memPerConn: ratio('memPerConn'), qos0: ratio('qos0'), qos1: ratio('qos1') },
    workers: f.workers,
    workersRatios: { connects: ratio('connects', 'mosquitto', 'workers'), memPerConn: ratio('memPerConn', 'mosquitto', 'workers'), qos1: ratio('qos1', 'mosquitto', 'workers'), connectsToOneProcess: ratio('connects', 'fleetkey', 'workers'), qos1ToOneProcess: ratio('qos1', 'fleetkey', 'workers') },
    ratiosToNodeTls: { connects: ratio('connects', 'nodeTls'), connectCpuMs: ratio('connectCpuMs', 'nodeTls'), memPerConn: ratio('memPerConn', 'nodeTls') },
    revoke: {
      samples: revoke.length,
      p50: pct(revoke, 0.5),
      p99: pct(revoke, 0.99),
      max: Math.max(...revoke),
      perRunP50: stats(perRun.map((x) => x.p50)),
      perRunP99: stats(perRun.map((x) => x.p99)),
      timeouts: rest.reduce((n, r) => n + (r.reasons.timeout ?? 0), 0),
    },
  };
}

function table(o) {
  const n = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  const mmm = (s, d = 0, k = 1) => `${n(s.median / k, d)} [${n(s.min / k, d)}–${n(s.max / k, d)}]`;
  const row = (label, key, d, k, target, ok) =>
    `| ${label} | ${mmm(o.fleetkey[key], d, k)} | ${mmm(o.mosquitto[key], d, k)} | ${o.ratios[key].toFixed(2)}× | ${target} ${ok(o.ratios[key]) ? '✓' : '✗'} |`;
  const lines = [
    `bench/gateway (${o.mode}): ${o.params.runs} runs each, median [min–max]; mTLS (P-256, TLS 1.3), one load generator process, 127.0.0.1`,
    '',
    '| figure | Fleetkey (SQLite) | Mosquitto 2.0 | Fleetkey ÷ Mosquitto | target |',
    '| --- | --- | --- | --- | --- |',
    row(`mTLS connects/s (CONNACK received, ${o.params.concurrency} in flight)`, 'connects', 0, 1, '≥ 1.0×', (r) => r >= 1),
    row(`memory per idle connection, KiB (${n(o.params.idle)} connections)`, 'memPerConn', 1, 1024, '≤ 1.5×', (r) => r <= 1.5),
    row(`QoS 0 msg/s (Fleetkey stored, Mosquitto delivered; ${o.params.publishers} publishers)`, 'qos0', 0, 1, '≥ 0.5×', (r) => r >= 0.5),
    row('QoS 1 msg/s (PUBACKs in the window; Fleetkey acks once stored)', 'qos1', 0, 1, '—', () => true),
    `| revoke → disconnect p50 / p99 ms (${n(o.params.revokeConnected)} connected, ${o.revoke.samples} revokes) | ${n(o.revoke.p50, 1)} / ${n(o.revoke.p99, 1)} (per run p99 ${mmm(o.revoke.perRunP99, 1)}) | n/a (no live cut) | — | p99 ≤ 100 ms ${o.revoke.p99 <= 100 ? '✓' : '✗'} |`,
    '',
    `QoS 0 offered (sent/s): Fleetkey ${mmm(o.fleetkey.qos0Sent)}, Mosquitto ${mmm(o.mosquitto.qos0Sent)}. Broker CPU during connects: Fleetkey ${mmm(o.fleetkey.connectCpu)} % (${mmm(o.fleetkey.connectCpuMs, 2)} ms per connect), Mosquitto ${mmm(o.mosquitto.connectCpu)} % (${mmm(o.mosquitto.connectCpuMs, 2)} ms per connect): connects/s is capped by the load generator's own TLS handshakes when a broker stays below 100 %.`,
    '',
    `Node's own TLS as a second baseline (a bare \`tls.createServer\`, same identity and CA, mTLS, fixed CONNACK, nothing stored): connects/s ${mmm(o.nodeTls.connects)} (Fleetkey ÷ Node ${o.ratiosToNodeTls.connects.toFixed(2)}×), CPU per connect ${mmm(o.nodeTls.connectCpuMs, 2)} ms (${o.ratiosToNodeTls.connectCpuMs.toFixed(2)}×), memory per idle connection ${mmm(o.nodeTls.memPerConn, 1, 1024)} KiB (${o.ratiosToNodeTls.memPerConn.toFixed(2)}×).`,
    '',
    `Fleetkey as \`fleetkey serve --workers ${o.params.workers}\` (PostgreSQL, primary + ${o.params.workers} workers sharing the ports), same load generator code, its own devices:`,
    '',
    '| figure | Fleetkey --workers | Mosquitto 2.0 | ÷ Mosquitto | ÷ one Fleetkey process (SQLite) | target |',
    '| --- | --- | --- | --- | --- | --- |',
    `| mTLS connects/s | ${mmm(o.workers.connects)} | ${mmm(o.mosquitto.connects)} | ${o.workersRatios.connects.toFixed(2)}× | ${o.workersRatios.connectsToOneProcess.toFixed(2)}× | ≥ 1.5× ${o.workersRatios.connects >= 1.5 ? '✓' : '✗'} |`,
    `| broker CPU ms per connect (sum of all processes) | ${mmm(o.workers.connectCpuMs, 2)} | ${mmm(o.mosquitto.connectCpuMs, 2)} | ${(o.workers.connectCpuMs.median / o.mosquitto.connectCpuMs.median).toFixed(2)}× | | — |`,
    `| QoS 1 msg/s (PUBACKs in the window, acked once stored) | ${mmm(o.workers.qos1)} | ${mmm(o.mosquitto.qos1)} | ${o.workersRatios.qos1.toFixed(2)}× | ${o.workersRatios.qos1ToOneProcess.toFixed(2)}× | ≥ 1.5× ${o.workersRatios.qos1 >= 1.5 ? '✓' : '✗'} |`,
    `| memory per idle connection, KiB (RSS summed over primary + workers, no forced GC) | ${mmm(o.workers.memPerConn, 1, 1024)} | ${mmm(o.mosquitto.memPerConn, 1, 1024)} | ${o.workersRatios.memPerConn.toFixed(2)}× | | — |`,
    '',
    `Total ${n(o.seconds, 0)} s including setup.`,
  ];
  return lines.join('\n');
}

try {
  const out = await main();
  if (asJson) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  else console.log(table(out));
  await stop();
  await runCleanups();
  process.exit(0);
} catch (e) {
  console.error(e);
  cleanup();
  await runCleanups();
  process.exit(1);
}
