#!/usr/bin/env node
// `npm run bench [-- --quick]`: runs every benchmark, each against its baseline measured in the
// same run, and writes bench/REPORT.md and bench/report.json. --quick is a smoke check for CI
// (short runs; figures not asserted). CPU used by other processes while each benchmark runs is
// recorded from /proc, and a run where others used more than a tenth of a core is marked disturbed.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const quick = process.argv.includes('--quick');
const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const HZ = 100; // USER_HZ on Linux

const BENCHES = [
  { name: 'registry', title: 'Registry: binds/s and replace latency, SQLite and PostgreSQL', args: ['bench/registry/run.mjs', ...(quick ? ['--quick'] : [])] },
  { name: 'ca', title: 'CA: certificates/s and CSR verifications/s vs raw P-256 signatures, CRL of 100,000; SAS token verifications/s vs raw HMAC-SHA256', args: ['bench/ca/run.mjs', ...(quick ? ['--quick'] : [])] },
  { name: 'provisioning', title: 'Provisioning: registrations/s vs raw mTLS handshakes/s; manufacture devices/s', args: ['bench/provisioning/run.mjs', ...(quick ? ['--quick'] : [])] },
  { name: 'gateway', title: 'Gateway vs Mosquitto: connects/s, memory per connection, QoS 0/1 msgs/s, revoke→disconnect', args: ['bench/gateway/run.mjs', quick ? '--smoke' : ''].filter(Boolean), ulimit: 20000 },
  { name: 'ops', title: 'Metrics: gateway QoS 1 msgs/s with metrics on (scraped every second) vs off', args: ['bench/ops/run.mjs', ...(quick ? ['--quick'] : [])] },
  { name: 'cli', title: 'CLI: start-to-answer time of server-talking commands vs a bare node start', args: ['bench/cli/run.mjs', ...(quick ? ['--quick'] : [])] },
  { name: 'updates', title: 'Updates: device metadata checks/s and p99, artifact download MiB/s over mTLS vs a bare Node HTTPS server', args: ['bench/updates/run.mjs', ...(quick ? ['--quick'] : [])] },
  { name: 'attestation', title: 'Attestation: quote verifications/s vs raw P-256 verifications; N devices attesting through the device plane (p99, server CPU); bad quote → quarantine (p99)', args: ['bench/attestation/run.mjs', ...(quick ? ['--quick'] : [])] },
  { name: 'updates-verify', title: 'Updates (device): TUF client verification per update check (image + director, tuf-js) vs the raw signature verifications it needs', args: ['bench/updates/verify.mjs', ...(quick ? ['--quick'] : [])] },
  { name: 'cluster', title: 'Cluster (3 nodes, PostgreSQL + NATS): cross-node revoke→disconnect vs single node; NATS and JetStream msgs/s; PostgreSQL group-commit rows/s', args: ['bench/cluster/run.mjs', ...(quick ? ['--quick'] : [])] },
  { name: 'console', title: 'Console: JS to the first page (gzip), time to first render in chromium, filtering 100,000 devices (p99)', args: ['bench/console/run.mjs', ...(quick ? ['--quick'] : [])] },
  { name: 'simulator', title: 'Simulator: reconnect storm vs Mosquitto (success rate, time to 99%, CONNACK p99, refusals)', args: ['bench/simulator/run.mjs', ...(quick ? ['--quick'] : [])], ulimit: 20000 },
];

// Services a benchmark drives but does not spawn (PostgreSQL's backends, a daemonised broker)
// are part of the measurement, not disturbance.
const SERVICE_NAMES = new Set(['postgres', 'mosquitto', 'nats-server']);

function serviceJiffies() {
  let sum = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (!SERVICE_NAMES.has(comm)) continue;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime+stime, plus cutime+cstime: a postmaster accumulates its finished backends there.
      sum += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      // the process ended while we looked
    }
  }
  return sum;
}

function cpuSnapshot() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = (line[3] ?? 0) + (line[4] ?? 0);
  const total = line.reduce((a, b) => a + b, 0);
  // Our own CPU and that of every descendant we reaped: the benchmark's share of the machine.
  const self = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  const ours = Number(self[11]) + Number(self[12]) + Number(self[13]) + Number(self[14]);
  return { busy: total - idle, ours: ours + serviceJiffies() };
}

function run(b) {
  return new Promise((resolve) => {
    const cmd = b.ulimit === undefined ? process.execPath : 'bash';
    const argv = b.ulimit === undefined ? b.args : ['-c', `ulimit -n ${b.ulimit} 2>/dev/null; exec "${process.execPath}" ${b.args.map((a) => `'${a}'`).join(' ')}`];
    const child = spawn(cmd, argv, { cwd: here('..'), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      err += d;
      process.stderr.write(d);
    });
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

const machine = {
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
  node: process.version,
  openssl: process.versions.openssl,
  quick,
  date: new Date().toISOString(),
};
const results = [];
for (const b of BENCHES) {
  process.stderr.write(`\n== bench ${b.name}\n`);
  const before = cpuSnapshot();
  const t0 = Date.now();
  const r = await run(b);
  const wallS = (Date.now() - t0) / 1000;
  const after = cpuSnapshot();
  const otherCores = Math.max(0, (after.busy - before.busy - (after.ours - before.ours)) / HZ / wallS);
  results.push({
    name: b.name,
    title: b.title,
    command: `node ${b.args.join(' ')}`,
    exitCode: r.code,
    wallSeconds: Math.round(wallS),
    otherProcessesCores: Math.round(otherCores * 100) / 100,
    disturbed: otherCores > 0.1,
    output: r.out.trim(),
  });
}

const md = [
  '# Benchmark report',
  '',
  `Generated by \`npm run bench${quick ? ' -- --quick' : ''}\` on ${machine.date}.`,
  '',
  `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; Node ${machine.node}, OpenSSL ${machine.openssl}.`,
  quick ? '\n**Quick mode: short smoke runs, figures are not meaningful.**' : '',
  '',
  'Each benchmark measures its baseline in the same run and prints median, min and max over its runs with the ratio to that baseline. "Other CPU" is what processes outside the benchmark (its children, PostgreSQL and Mosquitto count as inside) used while it ran, in cores; above 0.1 the run is marked disturbed.',
  '',
  '| benchmark | exit | wall | other CPU | disturbed |',
  '| --- | --- | --- | --- | --- |',
  ...results.map((r) => `| ${r.name} | ${r.exitCode} | ${r.wallSeconds} s | ${r.otherProcessesCores} | ${r.disturbed ? 'yes' : 'no'} |`),
  '',
  ...results.flatMap((r) => [`## ${r.title}`, '', `\`${r.command}\``, '', '```', r.output, '```', '']),
].join('\n');
// A quick (CI smoke) run never overwrites the committed report of a full run.
const suffix = quick ? '.quick' : '';
writeFileSync(here(`./REPORT${suffix}.md`), md);
writeFileSync(here(`./report${suffix}.json`), `${JSON.stringify({ machine, results }, null, 2)}\n`);
process.stderr.write(`\nwrote bench/REPORT${suffix}.md and bench/report${suffix}.json\n`);
process.exitCode = results.some((r) => r.exitCode !== 0) ? 1 : 0;
