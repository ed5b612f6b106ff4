#!/usr/bin/env node
// bench/registry: binds/s and replace latency (p50/p99) through the registry service, on SQLite
// and PostgreSQL, each next to the database's own floor measured in the same run: the rate of
// bare one-row INSERT transactions on the same store (what any committed mutation must pay).
// Usage: node bench/registry/run.mjs [--quick] [--json] [--pg postgres://...]
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createServer, loadConfig, systemContext } from '@fleetkey/server';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const asJson = args.includes('--json');
const pgAdmin = args.includes('--pg') ? args[args.indexOf('--pg') + 1] : 'postgres://postgres@127.0.0.1:5432/postgres';
const RUNS = quick ? 3 : 5;
const N = quick ? 150 : 600;

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { median: q(0.5), min: s[0], max: s[s.length - 1], p99: q(0.99) };
};

async function withServer(dialect, fn) {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-bench-'));
  let dbName;
  let overrides = { dataDir: dir, port: 0 };
  if (dialect === 'postgres') {
    dbName = `fk_bench_${randomUUID().slice(0, 8)}`;
    const c = new pg.Client({ connectionString: pgAdmin });
    await c.connect();
    await c.query(`create database ${dbName}`);
    await c.end();
    const u = new URL(pgAdmin);
    u.pathname = `/${dbName}`;
    overrides = { ...overrides, databaseUrl: u.toString() };
  }
  const server = await createServer(loadConfig({ env: { FLEETKEY_LOG_LEVEL: 'silent' }, overrides }));
  try {
    return await fn(server);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
    if (dbName !== undefined) {
      const c = new pg.Client({ connectionString: pgAdmin });
      await c.connect();
      await c.query(`drop database if exists ${dbName} with (force)`);
      await c.end();
    }
  }
}

async function measure(dialect) {
  return withServer(dialect, async (server) => {
    const { devices, names, bindings } = server.services;
    const ctx = systemContext('bench');
    const baseline = [];
    const binds = [];
    const replaceLat = [];
    for (let run = 0; run < RUNS; run++) {
      // Baseline: one-row insert transactions, sequential, same store, same durability settings.
      let t0 = performance.now();
      for (let i = 0; i < N; i++) {
        await server.store.transaction((tx) =>
          tx.insertInto('events').values({ id: randomUUID(), type: 'bench', subject: 'bench', payload: '{}', created_at: Date.now() }).execute(),
        );
      }
      baseline.push(N / ((performance.now() - t0) / 1000));

      const devs = [];
      const nms = [];
      for (let i = 0; i < N; i++) {
        devs.push((await devices.create(ctx, {})).id);
        nms.push((await names.create(ctx, { name: `b-${run}-${i}-${randomUUID().slice(0, 6)}` })).name);
      }
      t0 = performance.now();
      for (let i = 0; i < N; i++) await bindings.bind(ctx, nms[i], devs[i], undefined);
      binds.push(N / ((performance.now() - t0) / 1000));

      const spares = [];
      for (let i = 0; i < N; i++) spares.push((await devices.create(ctx, {})).id);
      for (let i = 0; i < N; i++) {
        const s = performance.now();
        await bindings.replace(ctx, nms[i], { deviceId: spares[i], expectedDeviceId: devs[i], revokeOld: true, reason: 'bench' });
        replaceLat.push(performance.now() - s);
      }
    }
    const b = stats(baseline);
    const k = stats(binds);
    const r = stats(replaceLat);
    return {
      dialect,
      runs: RUNS,
      opsPerRun: N,
      baselineCommitsPerSec: b,
      bindsPerSec: k,
      bindsRatioToBaseline: k.median / b.median,
      replaceLatencyMs: { p50: r.median, p99: r.p99, min: r.min, max: r.max },
    };
  });
}

const results = [];
for (const dialect of ['sqlite', 'postgres']) results.push(await measure(dialect));
if (asJson) {
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} else {
  const f = (x) => x.toFixed(0);
  console.log(`registry benchmark: ${RUNS} runs x ${N} ops, sequential, one client`);
  console.log('| store | bare commits/s (baseline) | binds/s median [min-max] | binds ÷ baseline | replace p50 ms | replace p99 ms |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    console.log(
      `| ${r.dialect} | ${f(r.baselineCommitsPerSec.median)} | ${f(r.bindsPerSec.median)} [${f(r.bindsPerSec.min)}-${f(r.bindsPerSec.max)}] | ${r.bindsRatioToBaseline.toFixed(2)} | ${r.replaceLatencyMs.p50.toFixed(2)} | ${r.replaceLatencyMs.p99.toFixed(2)} |`,
    );
  }
}
