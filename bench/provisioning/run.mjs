#!/usr/bin/env node
// bench/provisioning: device registrations/s end to end — `provision()` from the device SDK over
// real HTTPS with mTLS (x509 attestation with the IDevID), several devices in flight, against a
// Fleetkey server in its own process — next to the raw Node mTLS handshake rate measured in the
// same run (plain tls.createServer, requestCert, same P-256 keys, also in its own process).
// Plus `fleetkey manufacture` devices/s when the CLI is built.
//
//   npx tsc -b packages/cli packages/device && node bench/provisioning/run.mjs [--quick] [--json-only]
//
// Each figure: median/min/max over RUNS runs (5, or 3 with --quick), the two measures interleaved
// run by run so load on the shared machine hits both alike.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { toPem } from '@fleetkey/crypto';
import { createCsr, FileKeystore } from '../../packages/device/dist/keystore/index.js';
import { provision, writeBundle } from '../../packages/device/dist/provisioning/index.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = join(here, '..', '..');
const quick = process.argv.includes('--quick');
const jsonOnly = process.argv.includes('--json-only');
const RUNS = quick ? 3 : 5;
// The device plane allows 200 requests in a burst per source address (then 10/s, by design):
// every run uses a fresh server and stays inside that burst, so the figure is the server's
// throughput, not the rate limiter's.
const DEVICES = quick ? 60 : 150;
const IN_FLIGHT = 8;
const HANDSHAKE_MS = quick ? 1000 : 2000;
const CLI_COUNT = quick ? 30 : 100;
const log = (...a) => {
  if (!jsonOnly) console.error(...a);
};

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  const r = (v) => Math.round(v * 10) / 10;
  return { median: r(median), min: r(s[0]), max: r(s.at(-1)), runs: s.length };
};

/** Starts `node script ...args` and resolves with its first stdout line (JSON) and a stop(). */
function child(script, args) {
  // FLEETKEY_BENCH_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p") passes flags to the children for profiling.
  const nodeArgs = (process.env.FLEETKEY_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const proc = spawn(process.execPath, [...nodeArgs, join(here, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'], cwd: repo });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.once('exit', (code) => reject(new Error(`${script} exited ${code}`)));
    proc.stdout.on('data', (d) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      proc.removeAllListeners('exit');
      resolve({
        info: JSON.parse(out.slice(0, nl)),
        pid: proc.pid,
        stop: () => new Promise((r) => (proc.exitCode !== null ? r() : (proc.once('exit', () => r()), proc.kill('SIGTERM')))),
      });
    });
  });
}

/** CPU seconds (user + system) a process has used, from /proc/PID/stat (clock ticks of 1/100 s). */
function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function pool(n, inFlight, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(inFlight, n) }, async () => {
    while (next < n) await fn(next++);
  }));
}

// ---- raw mTLS handshakes (baseline) ----

function baselinePki(dir) {
  const o = (args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  o(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=bench CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  for (const [name, ext] of [['server', 'subjectAltName=IP:127.0.0.1'], ['client', 'extendedKeyUsage=clientAuth']]) {
    o(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
    o(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-out', `${name}.pem`, '-extfile', `${name}.ext`]);
  }
}

async function handshakes(dir) {
  const srv = await child('child-tls.mjs', [dir]);
  const opts = { host: '127.0.0.1', port: srv.info.port, ca: readFileSync(join(dir, 'ca.pem')), cert: readFileSync(join(dir, 'client.pem')), key: readFileSync(join(dir, 'client.key')) };
  const one = () =>
    new Promise((resolve, reject) => {
      const s = connect(opts);
      s.once('data', () => {
        s.destroy();
        resolve();
      });
      s.once('error', reject);
    });
  for (let i = 0; i < 20; i++) await one(); // warm-up
  let n = 0;
  const cpu0 = cpuSeconds(srv.pid);
  const start = performance.now();
  const until = start + HANDSHAKE_MS;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (performance.now() < until) {
      await one();
      n++;
    }
  }));
  const rate = (n * 1000) / (performance.now() - start);
  const cpuMs = ((cpuSeconds(srv.pid) - cpu0) * 1000) / n;
  await srv.stop();
  return { rate, cpuMs };
}

// ---- Fleetkey: manufacture (not timed) then provision (timed) ----

async function api(base, token, method, path, body) {
  const r = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const j = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

/** What `fleetkey manufacture --attestation x509` does, in process: register, IDevID, bundle. */
async function manufacture(s, outDir, i) {
  const dev = await api(s.url, s.token, 'POST', '/v1/devices', { model: 'bench', serials: { unit: `B-${i}` } });
  const dir = join(outDir, dev.id);
  const secret = randomBytes(32);
  const ks = await FileKeystore.open({ dir: join(dir, 'keys'), protector: { kind: 'machine', secret } });
  try {
    const key = await ks.generateKey('idevid', 'P-256');
    const csr = toPem(await createCsr(key, { commonName: dev.id }), 'CERTIFICATE REQUEST');
    const issued = await api(s.url, s.token, 'POST', '/v1/certificates', { deviceId: dev.id, csr, kind: 'idevid' });
    await writeBundle(dir, {
      device: { version: 1, deviceId: dev.id, model: 'bench', serials: { unit: `B-${i}` }, attestation: 'x509', enrollmentId: s.enrollment, provisioningUrl: s.deviceUrl, keystore: { type: 'file', dir: 'keys', protector: 'machine-secret' }, idevidKeyLabel: 'idevid', tpmTcti: null },
      caBundlePem: s.caBundlePem,
      idevidChainPem: issued.chainPem,
      machineSecret: secret,
    });
  } finally {
    await ks.close();
    secret.fill(0);
  }
  return dir;
}

/** The built CLI registers the manufacture command (dist/main.js wires it). */
function cliHasManufacture() {
  const main = join(repo, 'packages/cli/dist/main.js');
  return existsSync(main) && readFileSync(main, 'utf8').includes('manufactureCommand');
}

async function fleetkeyRun(tmp, r) {
  const dataDir = join(tmp, `server-${r}`);
  const srv = await child('child-server.mjs', [dataDir]);
  try {
    const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    const s = { ...srv.info, token, dataDir, caBundlePem: readFileSync(join(dataDir, 'ca-bundle.pem'), 'utf8') };
    s.enrollment = (await api(s.url, token, 'POST', '/v1/enrollments', { label: 'bench', kind: 'group', attestation: 'x509' })).enrollment.id;
    const out = mkdtempSync(join(tmp, 'bundles-'));
    const dirs = new Array(DEVICES);
    await pool(DEVICES, 4, async (i) => (dirs[i] = await manufacture(s, out, i)));

    let failed = 0;
    const cpu0 = cpuSeconds(srv.pid);
    const start = performance.now();
    await pool(DEVICES, IN_FLIGHT, async (i) => {
      await provision(dirs[i], { retry: { maxAttempts: 1 } }).catch((e) => {
        failed++;
        if (failed === 1) log(`  provisioning failed: ${e.code ?? ''} ${e.detail ?? e.message}`);
      });
    });
    const regs = ((DEVICES - failed) * 1000) / (performance.now() - start);
    const serverCpuMs = ((cpuSeconds(srv.pid) - cpu0) * 1000) / (DEVICES - failed);
    if (failed > 0) throw new Error(`${failed} of ${DEVICES} provisionings failed`);

    let cli = null;
    if (cliHasManufacture()) {
      const outCli = join(tmp, `cli-${r}`);
      const args = [join(repo, 'packages/cli/bin/fleetkey.js'), '--url', s.url, '--token', token, '--data-dir', dataDir, '--json', 'manufacture', '--count', String(CLI_COUNT), '--out', outCli, '--enrollment', s.enrollment];
      const stdout = await new Promise((resolve, reject) =>
        execFile(process.execPath, args, { cwd: repo, maxBuffer: 1 << 24 }, (err, so, se) => (err ? reject(new Error(`fleetkey manufacture: ${se}`)) : resolve(so))),
      );
      cli = JSON.parse(stdout).devicesPerSecond;
    }
    return { regs, cli, serverCpuMs };
  } finally {
    await srv.stop();
  }
}

const tmp = mkdtempSync(join(os.tmpdir(), 'fleetkey-bench-prov-'));
try {
  baselinePki(tmp);
  log(`bench/provisioning: ${RUNS} runs, ${DEVICES} devices/run, ${IN_FLIGHT} in flight, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}`);
  const hs = [];
  const hsCpu = [];
  const regCpu = [];
  const regs = [];
  const cli = [];
  for (let r = 0; r < RUNS; r++) {
    const h = await handshakes(tmp);
    hs.push(h.rate);
    hsCpu.push(h.cpuMs);
    const f = await fleetkeyRun(tmp, r);
    regs.push(f.regs);
    regCpu.push(f.serverCpuMs);
    if (f.cli !== null) cli.push(f.cli);
    log(`  run ${r + 1}: raw mTLS ${hs.at(-1).toFixed(0)} handshakes/s (server ${h.cpuMs.toFixed(2)} ms CPU each), provisioning ${f.regs.toFixed(1)} registrations/s (server ${f.serverCpuMs.toFixed(2)} ms CPU each)${f.cli === null ? '' : `, manufacture ${f.cli} devices/s`}`);
  }
  const result = {
    runs: RUNS,
    devicesPerRun: DEVICES,
    inFlight: IN_FLIGHT,
    rawMtlsHandshakesPerSecond: stats(hs),
    registrationsPerSecond: stats(regs),
    ratioToRawHandshakes: Math.round((stats(regs).median / stats(hs).median) * 1000) / 1000,
    // Where the time goes, independent of how the two processes share the machine's cores.
    serverCpuMsPerRawHandshake: stats(hsCpu),
    serverCpuMsPerRegistration: stats(regCpu),
    manufactureDevicesPerSecond: cli.length === 0 ? null : stats(cli),
    node: process.version,
    cpus: os.cpus().length,
  };
  const f = (s) => `median ${s.median} (min ${s.min}, max ${s.max})`;
  log(`raw mTLS handshakes/s        ${f(result.rawMtlsHandshakesPerSecond)}`);
  log(`provisioning registrations/s ${f(result.registrationsPerSecond)}  = ${result.ratioToRawHandshakes} × raw handshakes`);
  log(`server CPU ms per handshake / per registration: ${f(result.serverCpuMsPerRawHandshake)} / ${f(result.serverCpuMsPerRegistration)}`);
  log(`fleetkey manufacture dev/s   ${result.manufactureDevicesPerSecond === null ? 'n/a (CLI not built with the manufacture command)' : f(result.manufactureDevicesPerSecond)}`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
