#!/usr/bin/env node
// bench/console: the web console's three figures, each next to a baseline measured in the same run.
//  1. JS shipped to the first page, gzip (goal ≤ 100 KB) — baseline: its two libraries alone
//     (preact + uPlot, minified, gzip), so the console's own code is the difference.
//  2. Time to first render in Debian chromium (navigation start → the overview's device counts
//     on screen, signed in) — baseline: the same browser navigating to the server's /healthz JSON.
//  3. Filtering a 100,000-device list server side (GET /v1/devices with status, model, id-prefix
//     search; 50 a page, keyset cursors), p50/p99 — baseline: the unfiltered first page.
// Usage: node bench/console/run.mjs [--quick]   (needs `npm run build`: the server and the console)
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { createServer, loadConfig } from '@fleetkey/server';
import { chromium } from 'playwright-core';
import { scratch } from '../lib/scratch.mjs';

const quick = process.argv.includes('--quick');
const DEVICES = quick ? 10_000 : 100_000;
const RENDER_RUNS = quick ? 3 : 10;
const QUERIES = quick ? 100 : 500;
const root = fileURLToPath(new URL('../..', import.meta.url));
const dist = join(root, 'packages/console/dist');
const CHROMIUM = '/usr/bin/chromium';

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { median: q(0.5), min: s[0], max: s[s.length - 1], p99: q(0.99) };
};
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const ms = (n) => `${n.toFixed(1)} ms`;

if (!existsSync(join(dist, 'index.html'))) {
  console.error('bench/console: packages/console/dist missing; run `npm run build` first');
  process.exit(1);
}

// 1. Bytes: every script and stylesheet the first page references, as a browser receives them.
const index = readFileSync(join(dist, 'index.html'), 'utf8');
const refs = [...index.matchAll(/(?:src|href)="\/(assets\/[^"]+)"/g)].map((m) => m[1]);
const gz = (file) => gzipSync(readFileSync(join(dist, file))).length;
const jsGzip = refs.filter((f) => f.endsWith('.js')).reduce((a, f) => a + gz(f), 0);
const cssGzip = refs.filter((f) => f.endsWith('.css')).reduce((a, f) => a + gz(f), 0);
const libGzip = gzipSync(readFileSync(join(root, 'node_modules/preact/dist/preact.module.js'))).length
  + gzipSync(readFileSync(join(root, 'node_modules/preact/hooks/dist/hooks.module.js'))).length
  + gzipSync(readFileSync(join(root, 'node_modules/uplot/dist/uPlot.iife.min.js'))).length;

const s = scratch('fleetkey-bench-console-');
const server = await createServer(loadConfig({ env: { FLEETKEY_LOG_LEVEL: 'silent' }, overrides: { dataDir: s.dir, port: 0, host: '127.0.0.1' } }), {});
const admin = readFileSync(join(s.dir, 'admin.token'), 'utf8').trim();
const call = async (path) => {
  const r = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${admin}` } });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
};

try {
  // 3 first (the render then shows a fleet of realistic size). Rows go straight into the store:
  // the registry's create path is bench/registry's subject, not this one's.
  const MODELS = Array.from({ length: 20 }, (_, i) => `model-${i}`);
  const STATUSES = ['active', 'active', 'active', 'suspended', 'revoked', 'manufactured'];
  const now = Date.now();
  for (let done = 0; done < DEVICES; ) {
    const n = Math.min(1000, DEVICES - done);
    const rows = Array.from({ length: n }, (_, i) => ({
      id: randomUUID(),
      model: MODELS[(done + i) % MODELS.length],
      serials: null,
      hw_fingerprint: null,
      status: STATUSES[(done + i) % STATUSES.length],
      status_reason: null,
      prior_status: null,
      created_at: now,
      updated_at: now,
    }));
    await server.store.db.insertInto('devices').values(rows).execute();
    // Every device holds a name tagged line=0..49 (the tag filter), one in 20 is online (device_presence).
    const names = rows.map((r, i) => ({ id: randomUUID(), name: `cell-${done + i}`, tags: JSON.stringify({ line: String((done + i) % 50) }), created_at: now, updated_at: now }));
    await server.store.db.insertInto('names').values(names).execute();
    await server.store.db.insertInto('name_keys').values(names.map((x) => ({ key: x.name, name_id: x.id, kind: 'current', created_at: now, retired_at: null }))).execute();
    await server.store.db.insertInto('bindings').values(rows.map((r, i) => ({ id: randomUUID(), name_id: names[i].id, device_id: r.id, valid_from: now, valid_to: null, bind_reason: null, bind_actor: 'bench', unbind_reason: null, unbind_actor: null }))).execute();
    const live = rows.filter((_, i) => (done + i) % 20 === 0);
    await server.store.db.insertInto('device_presence').values(live.map((r) => ({ device_id: r.id, connected: 1, since: now, remote_address: null, node_id: null }))).execute();
    done += n;
  }
  const timeQuery = async (path) => {
    const t0 = performance.now();
    await call(path);
    return performance.now() - t0;
  };
  const hex = () => Math.floor(Math.random() * 4096).toString(16).padStart(3, '0');
  const kinds = {
    'unfiltered first page (baseline)': () => '/v1/devices?limit=50',
    'status=suspended, random page': () => `/v1/devices?status=suspended&limit=50&after=${randomUUID()}`,
    'model=model-7, random page': () => `/v1/devices?model=model-7&limit=50&after=${randomUUID()}`,
    'status+model, random page': () => `/v1/devices?status=active&model=model-3&limit=50&after=${randomUUID()}`,
    'search q=<3 hex chars> (id prefix)': () => `/v1/devices?q=${hex()}&limit=50`,
    'tag=line=7, random page': () => `/v1/devices?tag=line=7&limit=50&after=${randomUUID()}`,
    'online=true, random page': () => `/v1/devices?online=true&limit=50&after=${randomUUID()}`,
    'online=false+model, random page': () => `/v1/devices?online=false&model=model-3&limit=50&after=${randomUUID()}`,
    'tag+online+status, first page': () => `/v1/devices?tag=line=7&online=true&status=active&limit=50`,
  };
  for (let i = 0; i < 20; i++) await timeQuery(kinds['status=suspended, random page']()); // warm-up
  const queryResults = {};
  for (const [label, path] of Object.entries(kinds)) {
    const lat = [];
    for (let i = 0; i < QUERIES; i++) lat.push(await timeQuery(path()));
    queryResults[label] = stats(lat);
  }

  // 2. Time to first render: a fresh browser context per run (cold cache), signed in via the API.
  let render = null;
  let healthz = null;
  if (existsSync(CHROMIUM)) {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const firstRender = [];
      const blank = [];
      for (let i = 0; i < RENDER_RUNS; i++) {
        const ctx = await browser.newContext();
        const page = await ctx.newPage();
        await page.goto(`${server.url}/healthz`);
        blank.push(await page.evaluate(() => performance.getEntriesByType('navigation')[0].responseEnd));
        // Sign in through the API from the page's origin, so the cookie is set as the console sets it.
        await page.evaluate(async (token) => {
          await fetch('/v1/console/session', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
        }, admin);
        await page.goto(`${server.url}/`, { waitUntil: 'commit' });
        await page.getByTestId('status-counts').waitFor({ timeout: 30_000 });
        firstRender.push(await page.evaluate(() => performance.now()));
        await ctx.close();
      }
      render = stats(firstRender);
      healthz = stats(blank);
    } finally {
      await browser.close();
    }
  }

  console.log(`JS shipped to the first page (gzip): ${kb(jsGzip)} (goal ≤ 100 KB) + CSS ${kb(cssGzip)}; baseline preact + hooks + uPlot alone: ${kb(libGzip)} (console's own code ≈ ${kb(Math.max(0, jsGzip - libGzip))})`);
  if (render === null) console.log('time to first render: skipped (no /usr/bin/chromium)');
  else
    console.log(
      `time to first render (signed in, overview counts on screen, cold cache, ${RENDER_RUNS} runs): median ${ms(render.median)} (min ${ms(render.min)}, max ${ms(render.max)}); baseline /healthz navigation: median ${ms(healthz.median)}; ratio ${(render.median / healthz.median).toFixed(1)}×`,
    );
  console.log(`device list over ${DEVICES.toLocaleString('en')} devices, SQLite, ${QUERIES} requests each over HTTP (50 a page):`);
  const base = queryResults['unfiltered first page (baseline)'];
  for (const [label, r] of Object.entries(queryResults)) {
    console.log(`  ${label}: p50 ${ms(r.median)}, p99 ${ms(r.p99)}, max ${ms(r.max)}; p99 ÷ baseline p99 ${(r.p99 / base.p99).toFixed(2)}`);
  }
} finally {
  await server.close();
  await s.stop();
}
