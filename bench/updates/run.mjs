#!/usr/bin/env node
// bench/updates (server part): metadata refresh (10,000 device checks, each = image
// timestamp.json + the device's director timestamp.json over mTLS with its own certificate) in
// requests/s and p99, and artifact download throughput over mTLS; each next to a bare Node HTTPS
// server (same TLS policy and certificate, client certificates requested) serving the same bytes
// from memory / disk, measured in the same run. The load runs in a worker thread (own event loop);
// the servers run in this thread one at a time.
// Usage: node bench/updates/run.mjs [--quick] [--json]
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, request } from 'node:https';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { addSignature, buildRoot, generateTufKeyPair, softwareTufSigner } from '@fleetkey/crypto';
import { createServer, loadConfig } from '@fleetkey/server';
import { scratch } from '../lib/scratch.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const asJson = args.includes('--json');
const CHECKS = quick ? 1_000 : 10_000;
const DEVICES = quick ? 20 : 100;
const CONCURRENCY = quick ? 20 : 100;
const ARTIFACT_MB = quick ? 8 : 64;
const DOWNLOADS = quick ? 3 : 8;
const RUNS = quick ? 1 : 3;

const s = scratch('fk-bench-updates-');
const stats = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  const q = (p) => v[Math.min(v.length - 1, Math.floor(p * v.length))];
  return { median: q(0.5), min: v[0], max: v[v.length - 1] };
};

async function call(server, token, method, path, body) {
  const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text === '' ? null : JSON.parse(text);
}
function mtlsPost(url, body, tls) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = request(url, { method: 'POST', ...tls, agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`provision: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(data);
  });
}
const sign = async (signed, signers) => {
  let d = { signatures: [], signed };
  for (const x of signers) d = await addSignature(d, x);
  return d;
};

const config = loadConfig({ env: { FLEETKEY_LOG_LEVEL: 'silent' }, overrides: { dataDir: s.dir, port: 0, host: '127.0.0.1' } });
config.deviceHttp.port = 0;
config.gateway.enabled = false;
const server = await createServer(config);
try {
  const token = server.bootstrapAdminToken;
  // Repository: offline root (2 of 3), targets key, one release.
  const rootKeys = [0, 1, 2].map(() => softwareTufSigner(generateTufKeyPair('ed25519').privateKey));
  const targetsKey = softwareTufSigner(generateTufKeyPair('ed25519').privateKey);
  const online = await call(server, token, 'GET', '/v1/updates/online-keys');
  for (const repo of ['image', 'director']) {
    const on = online[repo];
    const signed = buildRoot({
      version: 1,
      expiresAt: Date.now() + 86_400_000 * 30,
      root: { keys: rootKeys.map((k) => k.key), threshold: 2 },
      targets: { keys: [repo === 'image' ? targetsKey.key : on.targets.key], threshold: 1 },
      snapshot: { keys: [on.snapshot.key], threshold: 1 },
      timestamp: { keys: [on.timestamp.key], threshold: 1 },
    });
    await call(server, token, 'POST', '/v1/updates/root', { repo, root: await sign(signed, rootKeys.slice(0, 2)) });
  }
  const artifact = randomBytes(ARTIFACT_MB * 1024 * 1024);
  const sha = createHash('sha256').update(artifact).digest('hex');
  const up = await fetch(`${server.url}/v1/updates/artifacts?length=${artifact.length}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body: artifact });
  if (up.status !== 201) throw new Error(`upload ${up.status}`);
  const draft = await call(server, token, 'POST', '/v1/releases/draft', { model: 'bench', version: '1.0.0', targetName: 'bench.bin', sha256: sha, length: artifact.length });
  await call(server, token, 'POST', '/v1/releases', { model: 'bench', version: '1.0.0', targetName: 'bench.bin', targets: await sign(draft.signed, [targetsKey]) });

  // Devices provisioned as in the field: IDevID from the manufacturing CA, then x509 provisioning
  // over mTLS for an operational certificate (each check presents its own device's).
  const ca = readFileSync(join(s.dir, 'ca-bundle.pem'), 'utf8');
  await call(server, token, 'POST', '/v1/enrollments', { label: 'bench', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'bench-{id8}' } });
  const keyAndCsr = (i, tag) => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' });
    const path = join(s.dir, `${tag}${i}.key`);
    writeFileSync(path, keyPem, { mode: 0o600 });
    return { keyPem, csr: execFileSync('openssl', ['req', '-new', '-key', path, '-subj', '/CN=device'], { encoding: 'utf8' }) };
  };
  const devices = [];
  for (let i = 0; i < DEVICES; i++) {
    const d = await call(server, token, 'POST', '/v1/devices', { model: 'bench' });
    const idevid = keyAndCsr(i, 'i');
    const birth = await call(server, token, 'POST', '/v1/certificates', { deviceId: d.id, csr: idevid.csr, kind: 'idevid', validity: '3650d' });
    const op = keyAndCsr(i, 'o');
    const p = await mtlsPost(`${server.deviceUrl}/device/v1/provision/x509`, { csr: op.csr }, { ca, cert: birth.chainPem, key: idevid.keyPem });
    devices.push({ cert: p.chainPem, key: op.keyPem });
  }
  const imageTs = await call(server, token, 'GET', '/v1/updates/repo/metadata/timestamp.json');

  // The bare baseline: same TLS key/cert and trust, client certificate requested, the same
  // timestamp bytes from memory and the artifact streamed from the same file.
  const tlsOpts = { key: server.ca.tls.keyPem, cert: server.ca.tls.chainPem, ca: [ca], requestCert: true, rejectUnauthorized: false };
  const imageBody = JSON.stringify(imageTs);
  const artifactPath = join(s.dir, 'updates', 'targets', sha);
  const bare = createHttpsServer(tlsOpts, (req, res) => {
    if (req.url.endsWith('/timestamp.json')) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(imageBody) });
      res.end(imageBody);
    } else {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': artifact.length });
      createReadStream(artifactPath, { highWaterMark: 256 * 1024 }).pipe(res);
    }
  });
  await new Promise((r) => bare.listen(0, '127.0.0.1', r));
  const bareUrl = `https://127.0.0.1:${bare.address().port}`;

  const load = (base, job) =>
    new Promise((resolve, reject) => {
      const w = new Worker(new URL('./loadgen.mjs', import.meta.url), { workerData: { base, ca, devices, job, sha } });
      w.once('message', resolve);
      w.once('error', reject);
    });
  const check = { kind: 'check', checks: CHECKS, concurrency: CONCURRENCY };
  const dl = { kind: 'download', downloads: DOWNLOADS, bytes: artifact.length };
  const res = { fleetkey: { check: [], p99: [], dl: [] }, bare: { check: [], p99: [], dl: [] } };
  for (let run = 0; run < RUNS; run++) {
    const f = await load(server.deviceUrl, check);
    const b = await load(bareUrl, check);
    res.fleetkey.check.push(f.perSec);
    res.fleetkey.p99.push(f.p99);
    res.bare.check.push(b.perSec);
    res.bare.p99.push(b.p99);
    const fd = await load(server.deviceUrl, dl);
    const bd = await load(bareUrl, dl);
    res.fleetkey.dl.push(fd.mbPerSec);
    res.bare.dl.push(bd.mbPerSec);
  }
  await new Promise((r) => bare.close(r));
  const out = {
    runs: RUNS,
    checks: CHECKS,
    devices: DEVICES,
    concurrency: CONCURRENCY,
    artifactMB: ARTIFACT_MB,
    checksPerSec: { fleetkey: stats(res.fleetkey.check), bare: stats(res.bare.check) },
    checkP99Ms: { fleetkey: stats(res.fleetkey.p99), bare: stats(res.bare.p99) },
    downloadMBps: { fleetkey: stats(res.fleetkey.dl), bare: stats(res.bare.dl) },
  };
  out.checkRatio = out.checksPerSec.fleetkey.median / out.checksPerSec.bare.median;
  out.downloadRatio = out.downloadMBps.fleetkey.median / out.downloadMBps.bare.median;
  if (asJson) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  else {
    const f = (x) => x.toFixed(0);
    const m = (x) => `${f(x.median)} [${f(x.min)}-${f(x.max)}]`;
    console.log(`updates benchmark: ${RUNS} run(s); ${CHECKS} device checks (image timestamp.json + own director timestamp.json each, ${DEVICES} device certificates, ${CONCURRENCY} in flight, keep-alive per device); ${DOWNLOADS} downloads of ${ARTIFACT_MB} MiB`);
    console.log('| measure | Fleetkey (device plane, mTLS) | bare Node HTTPS, same files | ratio |');
    console.log('| --- | --- | --- | --- |');
    console.log(`| checks/s median [min-max] | ${m(out.checksPerSec.fleetkey)} | ${m(out.checksPerSec.bare)} | ${out.checkRatio.toFixed(2)} |`);
    console.log(`| check p99 ms (median of runs) | ${out.checkP99Ms.fleetkey.median.toFixed(1)} | ${out.checkP99Ms.bare.median.toFixed(1)} | |`);
    console.log(`| download MiB/s median [min-max] | ${m(out.downloadMBps.fleetkey)} | ${m(out.downloadMBps.bare)} | ${out.downloadRatio.toFixed(2)} (goal ≥ 0.8) |`);
  }
} finally {
  await server.close();
  await s.stop();
}
