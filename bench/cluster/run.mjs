#!/usr/bin/env node
// bench/cluster (issue 15): Fleetkey as a cluster on PostgreSQL and NATS, measured on this machine.
//  (1) revoke → disconnect p50/p99: revoke on node 1 a device connected to node 3, against the
//      single-node figure (device on node 1, revoked on node 1) measured interleaved in the same run;
//  (2) NATS: core publish msgs/s and JetStream publish-with-ack msgs/s (300-byte telemetry bodies),
//      the bus and the telemetry export;
//  (3) PostgreSQL: telemetry rows/s written in group commits of 512 rows vs one row per commit
//      (the baseline: what a node without group commit would get);
//  (4) kill -9 of a node holding 1,000 connected devices (quick: 100), three `fleetkey serve`
//      processes (failover.mjs): time until all are reconnected to the others, until presence shows
//      none on the dead node, and acknowledged QoS 1 messages lost (must be 0).
// The three nodes run in this process (one event loop for all of them and the load generator): the
// revocation figures are an upper bound of what separate machines would show.
// Usage: node bench/cluster/run.mjs [--quick] [--json] [--failover-only]
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { connect as natsConnect } from 'nats';
import pg from 'pg';
import { createServer, loadConfig } from '@fleetkey/server';
import { freePort, provisionDevices } from '../gateway/setup.mjs';
import { failover } from './failover.mjs';
import { scratch } from '../lib/scratch.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const asJson = args.includes('--json');
const failoverOnly = args.includes('--failover-only');
const FAILOVER_DEVICES = quick ? 100 : 1000;
const PG_ADMIN = process.env.FLEETKEY_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REVOKES = quick ? 20 : 500;
const NATS_MSGS = quick ? 20_000 : 200_000;
const JS_MSGS = quick ? 5_000 : 50_000;
const PG_ROWS = quick ? 20_000 : 200_000;
const PG_SINGLE = quick ? 500 : 3_000;
const log = (m) => process.stderr.write(`bench cluster: ${m}\n`);
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
};
const BODY = Buffer.from(JSON.stringify({ deviceId: randomUUID(), name: 'press-0042', kind: 'telemetry', receivedAt: new Date().toISOString(), payload: JSON.stringify({ temp: 21.5, rpm: 1450, vibration: [0.01, 0.02, 0.015], status: 'running', seq: 123456 }) }).padEnd(300, ' '));

const s = scratch('fleetkey-bench-cluster-');

async function startNats() {
  const port = await freePort();
  const dir = join(s.dir, 'nats');
  mkdirSync(dir);
  const proc = spawn('/usr/sbin/nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  s.children.push(proc);
  await new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`nats-server did not start: ${out}`)), 15_000);
    const on = (d) => {
      out += d;
      if (out.includes('Server is ready')) {
        clearTimeout(t);
        resolve();
      }
    };
    proc.stderr.on('data', on);
    proc.stdout.on('data', on);
  });
  return { url: `nats://127.0.0.1:${port}`, servers: `127.0.0.1:${port}` };
}

async function createDb() {
  const name = `fk_bench_cluster_${randomUUID().slice(0, 8)}`;
  const c = new pg.Client({ connectionString: PG_ADMIN });
  await c.connect();
  await c.query(`create database ${name}`);
  await c.end();
  const u = new URL(PG_ADMIN);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const d = new pg.Client({ connectionString: PG_ADMIN });
      await d.connect();
      await d.query(`drop database if exists ${name} with (force)`);
      await d.end();
    },
  };
}

async function startNode(dataDir, databaseUrl, natsUrl, nodeId) {
  const config = loadConfig({ env: { FLEETKEY_LOG_LEVEL: 'silent' }, overrides: { dataDir, port: 0, host: '127.0.0.1', databaseUrl, clusterUrl: natsUrl } });
  config.deviceHttp.port = 0;
  config.gateway.port = 0;
  config.cluster = { ...config.cluster, nodeId };
  return createServer(config);
}

async function revocations(nodes, devices, bundlePem, adminToken) {
  const [n1, , n3] = nodes;
  const one = async (d, on) => {
    const c = await mqtt.connectAsync(on.mqttUrl, { clientId: d.id, protocolVersion: 5, key: d.keyPem, cert: d.certPem, ca: bundlePem, reconnectPeriod: 0, connectTimeout: 30_000 });
    const cut = new Promise((resolve) => {
      c.once('disconnect', (p) => resolve({ at: performance.now(), code: p.reasonCode }));
      c.once('close', () => resolve({ at: performance.now(), code: 'close' }));
    });
    const t0 = performance.now();
    const res = await fetch(`${n1.url}/v1/devices/${d.id}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'bench' }) });
    await res.text();
    const answered = performance.now();
    if (res.status !== 200) throw new Error(`revoke ${res.status}`);
    const r = await cut;
    c.end(true);
    if (r.code !== 0x98) throw new Error(`expected DISCONNECT 0x98, got ${r.code}`);
    return { total: r.at - t0, afterAnswer: r.at - answered };
  };
  const single = [];
  const cross = [];
  const crossAfter = [];
  for (let k = 0; k < REVOKES; k++) {
    single.push((await one(devices[2 * k], n1)).total);
    const x = await one(devices[2 * k + 1], n3);
    cross.push(x.total);
    crossAfter.push(x.afterAnswer);
  }
  return { single, cross, crossAfter };
}

async function natsThroughput(servers) {
  const nc = await natsConnect({ servers });
  try {
    // Core NATS (the cluster bus): publish as fast as the client flushes, one subscriber counting.
    const sub = await natsConnect({ servers });
    let got = 0;
    const done = new Promise((resolve) => sub.subscribe('bench.core', { callback: () => ++got === NATS_MSGS && resolve() }));
    await sub.flush();
    const t0 = performance.now();
    for (let i = 0; i < NATS_MSGS; i++) {
      nc.publish('bench.core', BODY);
      if (i % 1000 === 999) await nc.flush();
    }
    await done;
    const core = NATS_MSGS / ((performance.now() - t0) / 1000);
    await sub.close();
    // JetStream (the telemetry export): publish with ack, 256 in flight, as TelemetryOut does.
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: 'BENCH', subjects: ['bench.js.>'] });
    const js = nc.jetstream();
    const t1 = performance.now();
    for (let i = 0; i < JS_MSGS; i += 256) {
      await Promise.all(Array.from({ length: Math.min(256, JS_MSGS - i) }, (_, j) => js.publish(`bench.js.telemetry.press-${(i + j) % 1000}.${i + j}`, BODY, { msgID: `${i + j}` })));
    }
    const jet = JS_MSGS / ((performance.now() - t1) / 1000);
    await jsm.streams.delete('BENCH');
    return { core, jet };
  } finally {
    await nc.close();
  }
}

async function pgWrites(url) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    // The telemetry table's shape (migration 006): sequence key, device, name, time, payload, index.
    await c.query('create table bench_telemetry (seq bigserial primary key, device_id varchar(36) not null, name_id varchar(36), received_at bigint not null, payload text not null)');
    await c.query('create index bench_telemetry_device_time on bench_telemetry (device_id, received_at)');
    const devices = Array.from({ length: 1000 }, () => randomUUID());
    const payload = JSON.stringify({ temp: 21.5, rpm: 1450, vibration: [0.01, 0.02, 0.015], status: 'running' });
    const t0 = performance.now();
    for (let i = 0; i < PG_SINGLE; i++) {
      await c.query('insert into bench_telemetry (device_id, name_id, received_at, payload) values ($1, $2, $3, $4)', [devices[i % 1000], null, Date.now(), payload]);
    }
    const single = PG_SINGLE / ((performance.now() - t0) / 1000);
    const BATCH = 512;
    const t1 = performance.now();
    for (let i = 0; i < PG_ROWS; i += BATCH) {
      const n = Math.min(BATCH, PG_ROWS - i);
      const vals = [];
      const params = [];
      for (let j = 0; j < n; j++) {
        params.push(`($${4 * j + 1}, $${4 * j + 2}, $${4 * j + 3}, $${4 * j + 4})`);
        vals.push(devices[(i + j) % 1000], null, Date.now(), payload);
      }
      await c.query(`insert into bench_telemetry (device_id, name_id, received_at, payload) values ${params.join(',')}`, vals);
    }
    const grouped = PG_ROWS / ((performance.now() - t1) / 1000);
    return { single, grouped };
  } finally {
    await c.end();
  }
}

const nats = await startNats();
const db = await createDb();
const nodes = [];
const f1 = (x) => (x === null ? 'not reached' : `${x.toFixed(1)} s`);
const failoverPhase = async () => {
  mkdirSync(join(s.dir, 'failover'));
  const fo = await failover({ dir: join(s.dir, 'failover'), natsUrl: nats.url, children: s.children, devices: FAILOVER_DEVICES, publishEveryMs: quick ? 1000 : 2000, log });
  log(`failover: all ${fo.devices} back ${f1(fo.allReconnectedS)}, presence none on the dead node ${f1(fo.presenceNoneOnDeadNodeS)}, marked dead ${f1(fo.nodeMarkedDeadS)}, first back ${f1(fo.firstReconnectedS)}, failed attempts ${fo.failedReconnectAttempts} ${JSON.stringify(fo.failedReconnectReasons)}, acked ${fo.ackedMessages}, lost ${fo.ackedLost}`);
  return fo;
};
const failoverRow = (fo) =>
  `| kill -9 of a node holding ${fo.devices} devices (3 processes): all reconnected / presence none on it / marked dead; acked QoS 1 lost | ${f1(fo.allReconnectedS)} / ${f1(fo.presenceNoneOnDeadNodeS)} / ${f1(fo.nodeMarkedDeadS)}; ${fo.ackedLost} of ${fo.ackedMessages} acked lost (${JSON.stringify(fo.reconnectedTo)}) | | |`;
if (failoverOnly) {
  try {
    const fo = await failoverPhase();
    process.stdout.write(asJson ? `${JSON.stringify({ mode: quick ? 'quick' : 'full', failover: fo }, null, 2)}\n` : `${failoverRow(fo)}\n`);
    if (fo.ackedLost !== 0 || fo.allReconnectedS === null) process.exitCode = 1;
  } finally {
    await db.drop().catch(() => {});
    await s.stop();
  }
  process.exit();
}
try {
  const dataDir = join(s.dir, 'data');
  for (const id of ['node-1', 'node-2', 'node-3']) nodes.push(await startNode(dataDir, db.url, nats.url, id));
  log(`three nodes up on ${nats.url}`);
  const { readFileSync } = await import('node:fs');
  const adminToken = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const bundlePem = readFileSync(join(dataDir, 'ca-bundle.pem'), 'utf8');
  const fk = { info: { url: nodes[0].url, deviceUrl: nodes[1].deviceUrl, adminToken }, bundlePem };
  const t0 = Date.now();
  const devices = await provisionDevices(fk, 2 * REVOKES, 8);
  log(`${devices.length} devices provisioned in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const rv = await revocations(nodes, devices, bundlePem, adminToken);
  log(`revoke→disconnect single p50 ${pct(rv.single, 0.5).toFixed(1)} p99 ${pct(rv.single, 0.99).toFixed(1)}; cross p50 ${pct(rv.cross, 0.5).toFixed(1)} p99 ${pct(rv.cross, 0.99).toFixed(1)} ms`);
  for (const n of nodes.splice(0)) await n.close();
  const bus = await natsThroughput(nats.servers);
  log(`NATS core ${bus.core.toFixed(0)} msg/s, JetStream ${bus.jet.toFixed(0)} msg/s`);
  const w = await pgWrites(db.url);
  log(`PostgreSQL ${w.single.toFixed(0)} rows/s one per commit, ${w.grouped.toFixed(0)} rows/s in commits of 512`);
  const fo = await failoverPhase();
  const out = {
    mode: quick ? 'quick' : 'full',
    revocations: REVOKES,
    revoke: {
      singleNode: { p50: pct(rv.single, 0.5), p99: pct(rv.single, 0.99) },
      crossNode: { p50: pct(rv.cross, 0.5), p99: pct(rv.cross, 0.99) },
      crossNodeAfterApiAnswer: { p50: pct(rv.crossAfter, 0.5), p99: pct(rv.crossAfter, 0.99) },
    },
    nats: { coreMsgsPerS: bus.core, jetStreamAckedMsgsPerS: bus.jet, bodyBytes: BODY.length },
    postgres: { rowsPerSOneCommitEach: w.single, rowsPerSGroupCommit512: w.grouped },
    failover: fo,
  };
  const f = (x) => x.toFixed(1);
  const n0 = (x) => Math.round(x).toLocaleString('en-US');
  process.stdout.write(
    asJson
      ? `${JSON.stringify(out, null, 2)}\n`
      : [
          `mode ${out.mode}; three nodes in one process on one PostgreSQL and one nats-server (JetStream)`,
          '',
          '| figure | cluster | baseline (same run) | ratio |',
          '| --- | --- | --- | --- |',
          `| revoke → disconnect p50 / p99, ${REVOKES} revocations (node 1 → device on node 3 vs single node) | ${f(out.revoke.crossNode.p50)} / ${f(out.revoke.crossNode.p99)} ms | ${f(out.revoke.singleNode.p50)} / ${f(out.revoke.singleNode.p99)} ms | ${(out.revoke.crossNode.p99 / out.revoke.singleNode.p99).toFixed(2)}× p99 |`,
          `| of which after the operator API answered (bus + store read + DISCONNECT) p50 / p99 | ${f(out.revoke.crossNodeAfterApiAnswer.p50)} / ${f(out.revoke.crossNodeAfterApiAnswer.p99)} ms | | |`,
          `| NATS core publish (cluster bus), ${BODY.length}-byte messages | ${n0(bus.core)} msg/s | | |`,
          `| JetStream publish with ack, 256 in flight (telemetry export) | ${n0(bus.jet)} msg/s | | |`,
          `| PostgreSQL telemetry rows/s, commits of 512 vs one row per commit | ${n0(w.grouped)} rows/s | ${n0(w.single)} rows/s | ${(w.grouped / w.single).toFixed(1)}× |`,
          failoverRow(fo),
        ].join('\n') + '\n',
  );
  if (fo.ackedLost !== 0 || fo.allReconnectedS === null) process.exitCode = 1;
} finally {
  for (const n of nodes) await n.close().catch(() => {});
  await db.drop().catch(() => {});
  await s.stop();
}
