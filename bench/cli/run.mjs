#!/usr/bin/env node
// bench/cli: how long a `fleetkey` command takes from process start to its answer, against a
// local `fleetkey serve`, next to a bare `node -e 0` (the floor of any Node CLI) in the same run.
// Issue 14's goal: ≤ 300 ms on an idle machine for any command that talks to a server.
// Usage: node bench/cli/run.mjs [--quick] [--json]   (needs `npm run build`)
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratch } from '../lib/scratch.mjs';
import { BIN, measure } from './measure.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const asJson = args.includes('--json');
const RUNS = quick ? 5 : 30;

const s = scratch('fleetkey-bench-cli-');
const env = { PATH: process.env.PATH ?? '', FLEETKEY_LOG_LEVEL: 'warn' };
const server = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--device-port', '0', '--mqtt-port', '0'], { cwd: s.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
s.children.push(server);
server.stdout.resume();
const url = await new Promise((resolve, reject) => {
  let err = '';
  const timer = setTimeout(() => reject(new Error(`server did not start: ${err}`)), 120_000);
  server.stderr.on('data', (d) => {
    err += d;
    const m = /listening on (http:\/\/\S+)/.exec(err);
    if (m) {
      clearTimeout(timer);
      resolve(m[1]);
    }
  });
});
const token = readFileSync(join(s.dir, 'fleetkey-data', 'admin.token'), 'utf8').trim();
const g = ['--url', url, '--token', token];
const r = await measure(
  [
    { label: 'fleetkey --version', args: ['--version'] },
    { label: 'fleetkey device list', args: [...g, 'device', 'list', '--limit', '10'] },
    { label: 'fleetkey name list --json', args: [...g, 'name', 'list', '--json'] },
    { label: 'fleetkey audit verify', args: [...g, 'audit', 'verify'] },
  ],
  { runs: RUNS, env },
);
await s.stop();

const round = (x) => Math.round(x);
if (asJson) {
  process.stdout.write(`${JSON.stringify({ runs: RUNS, results: Object.fromEntries(Object.entries(r).map(([k, v]) => [k, { median: round(v.median), min: round(v.min), cpuMedian: round(v.cpuMedian) }])) }, null, 2)}\n`);
} else {
  const base = r.baseline.median;
  const load = (await import('node:os')).loadavg()[0].toFixed(1);
  const lines = [
    `${RUNS} runs each, interleaved; wall time from spawn to exit and the process's CPU time (user + system), ms; load average ${load} on ${(await import('node:os')).cpus().length} cores`,
    '',
    '| command | wall median | wall min | CPU median | wall ÷ bare node | goal (idle wall ≤ 300 ms) |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const [k, v] of Object.entries(r)) {
    const label = k === 'baseline' ? 'bare `node -e 0` (baseline)' : `\`${k}\``;
    const goal = k === 'baseline' || k.includes('version') ? '' : v.min <= 300 ? `met (min ${round(v.min)})` : `not shown on this machine (min ${round(v.min)})`;
    lines.push(`| ${label} | ${round(v.median)} | ${round(v.min)} | ${round(v.cpuMedian)} | ${k === 'baseline' ? '1.00' : (v.median / base).toFixed(2)} | ${goal} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
