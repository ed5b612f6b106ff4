#!/usr/bin/env node
// bench/attestation (issue 13):
//  1. quote verifications/s on one core (parse, signature with the recorded AK, selection, PCR
//     digest, reference values: what the server does per quote) next to raw ECDSA P-256
//     verifications/s in the same run;
//  2. N simulated devices attesting every I seconds through the device plane (HTTPS, mTLS, nonce
//     then quote): p50/p99 round trip and the server process's CPU share;
//  3. time from a bad quote to quarantine in force (p99): the verdict is sent after the
//     quarantine is committed and in force; a follow-up request on a forbidden route proves it.
//
//   npm run build && node bench/attestation/run.mjs [--quick]
import { spawn, execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomUUID, sign, verify } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { scratch } from '../lib/scratch.mjs';
import { softTpm } from './soft-tpm.mjs';
import { authenticateQuote, judgeValues, loadAttestationKey } from '../../packages/server/dist/modules/attestation/verify-quote.js';

const quick = process.argv.includes('--quick');
const here = fileURLToPath(new URL('.', import.meta.url));
const DEVICES = quick ? 100 : 1000;
const INTERVAL_S = quick ? 2 : 10;
const DURATION_S = quick ? 6 : 60;
const BAD = quick ? 20 : 100;
const CPU_MS = quick ? 500 : 2000;
const log = (...a) => console.error(...a);
const sha = (s) => createHash('sha256').update(s).digest('hex');
const PCRS = [0, 2, 4, 7];
const GOOD = Object.fromEntries(PCRS.map((p) => [String(p), sha(`pcr ${p} good`)]));
const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] * 10) / 10;
};

// 1. CPU: quote verification vs raw ECDSA P-256 verification, one core, interleaved.
function cpu() {
  const tpm = softTpm();
  const ak = loadAttestationKey(tpm.akPublic.toString('base64'));
  const policy = { pcrs: PCRS, reference: Object.fromEntries(PCRS.map((p) => [String(p), [GOOD[String(p)]]])), eventLog: null };
  const q = tpm.quote(PCRS, GOOD, sha('nonce'));
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const msg = Buffer.from(q.quote);
  const sig = sign('sha256', msg, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const rate = (f) => {
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < CPU_MS) {
      for (let i = 0; i < 50; i++) f();
      n += 50;
    }
    return n / ((performance.now() - t0) / 1000);
  };
  const quotes = [];
  const raws = [];
  for (let r = 0; r < 3; r++) {
    quotes.push(rate(() => {
      const a = authenticateQuote(ak, { quote: q.quote, signature: q.signature, pcrs: GOOD, eventLog: undefined }, policy);
      if (judgeValues(a.values, undefined, policy) !== null) throw new Error('bench quote judged bad');
    }));
    raws.push(rate(() => {
      if (!verify('sha256', msg, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig)) throw new Error('raw verify failed');
    }));
  }
  const med = (xs) => [...xs].sort((a, b) => a - b)[1];
  return { quoteVerificationsPerSecond: Math.round(med(quotes)), rawEcdsaP256VerificationsPerSecond: Math.round(med(raws)), ratio: Math.round((med(quotes) / med(raws)) * 100) / 100 };
}

function cpuJiffies(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);
}

function post(url, body, agent) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, body: text === '' ? null : JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function fleet() {
  const s = scratch('fk-bench-attest-');
  const child = spawn(process.execPath, [join(here, 'child-server.mjs'), s.dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  s.children.push(child);
  const info = await new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) resolve(JSON.parse(buf.split('\n')[0]));
    });
    child.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  const token = readFileSync(join(s.dir, 'admin.token'), 'utf8').trim();
  const ca = readFileSync(join(s.dir, 'ca-bundle.pem'), 'utf8');
  const api = async (method, path, body) => {
    const r = await fetch(`${info.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const j = await r.json();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(j)}`);
    return j;
  };
  const enrollment = await api('POST', '/v1/enrollments', { label: 'bench', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'b-{id8}' } });
  const enrollmentId = enrollment.enrollment?.id ?? enrollment.id;
  await api('PUT', '/v1/attestation/policies', { scope: 'model', key: 'bench-robot', pcrs: PCRS, reference: Object.fromEntries(PCRS.map((p) => [String(p), [GOOD[String(p)]]])), intervalSeconds: INTERVAL_S, maxAgeSeconds: INTERVAL_S * 3, onFailure: 'quarantine', onStale: 'alert' });
  log(`seeding ${DEVICES} devices (operational certificates, recorded AKs)…`);
  const devices = [];
  for (let i = 0; i < DEVICES; i++) {
    const d = await api('POST', '/v1/devices', { model: 'bench-robot' });
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' });
    writeFileSync(join(s.dir, 'k.pem'), keyPem, { mode: 0o600 });
    const csr = execFileSync('openssl', ['req', '-new', '-key', join(s.dir, 'k.pem'), '-subj', `/CN=${d.id}`], { encoding: 'utf8' });
    const cert = await api('POST', '/v1/certificates', { deviceId: d.id, csr, kind: 'operational' });
    devices.push({ id: d.id, tpm: softTpm(), agent: new Agent({ keepAlive: true, maxSockets: 1, ca, cert: cert.chainPem, key: keyPem }) });
  }
  // The AK a TPM admission would have recorded, and the device in service (the bench skips provisioning).
  const db = new Database(join(s.dir, 'fleetkey.db'));
  db.pragma('busy_timeout = 10000');
  const now = Date.now();
  const ins = db.prepare("insert into device_evidence (id, device_id, method, evidence_key, identity, seen, enrollment_id, recorded_at, last_seen_at, ak_public) values (?, ?, 'tpm', ?, '{}', '{}', ?, ?, ?, ?)");
  db.transaction(() => {
    for (const d of devices) {
      ins.run(randomUUID(), d.id, `tpm:${sha(d.id)}`, enrollmentId, now, now, d.tpm.akPublic.toString('base64'));
      db.prepare("update devices set status = 'provisioned' where id = ?").run(d.id);
    }
  })();
  db.close();

  const round = async (d, values) => {
    const t0 = performance.now();
    const n = await post(`${info.deviceUrl}/device/v1/attestation/nonce`, {}, d.agent);
    if (n.status !== 200) throw new Error(`nonce ${n.status} ${JSON.stringify(n.body)}`);
    const q = d.tpm.quote(n.body.pcrs, values, n.body.nonce);
    const v = await post(`${info.deviceUrl}/device/v1/attestation/quote`, { quote: q.quote.toString('base64'), signature: q.signature.toString('base64'), pcrs: values }, d.agent);
    if (v.status !== 200) throw new Error(`quote ${v.status} ${JSON.stringify(v.body)}`);
    return { ms: performance.now() - t0, verdict: v.body };
  };

  // 2. The fleet: each device attests every INTERVAL_S, phases spread evenly.
  log(`${DEVICES} devices attesting every ${INTERVAL_S} s for ${DURATION_S} s…`);
  for (const d of devices) await round(d, GOOD); // connect: first attestation (also warms TLS sessions)
  const rtts = [];
  let errors = 0;
  const j0 = cpuJiffies(info.pid);
  const t0 = Date.now();
  await Promise.all(
    devices.map(async (d, i) => {
      await new Promise((r) => setTimeout(r, (i * INTERVAL_S * 1000) / DEVICES));
      while (Date.now() - t0 < DURATION_S * 1000) {
        const started = Date.now();
        try {
          const r = await round(d, GOOD);
          if (r.verdict.verdict !== 'trusted') errors++;
          rtts.push(r.ms);
        } catch {
          errors++;
        }
        await new Promise((r) => setTimeout(r, Math.max(0, INTERVAL_S * 1000 - (Date.now() - started))));
      }
    }),
  );
  const wall = (Date.now() - t0) / 1000;
  const serverCores = (cpuJiffies(info.pid) - j0) / 100 / wall;

  // 3. Bad quotes: time until quarantine is in force.
  log(`${BAD} devices sending a quote over an unexpected measurement…`);
  const bad = { ...GOOD, 7: sha('unsigned bootloader') };
  const toQuarantine = [];
  let confirmed = 0;
  for (const d of devices.slice(0, BAD)) {
    const n = await post(`${info.deviceUrl}/device/v1/attestation/nonce`, {}, d.agent);
    const q = d.tpm.quote(n.body.pcrs, bad, n.body.nonce);
    const t1 = performance.now();
    const v = await post(`${info.deviceUrl}/device/v1/attestation/quote`, { quote: q.quote.toString('base64'), signature: q.signature.toString('base64'), pcrs: bad }, d.agent);
    toQuarantine.push(performance.now() - t1);
    if (v.body?.quarantined !== true) throw new Error(`not quarantined: ${JSON.stringify(v.body)}`);
    const after = await post(`${info.deviceUrl}/device/v1/session-token`, {}, d.agent);
    if (after.body?.code === 'DEVICE_QUARANTINED') confirmed++;
  }
  for (const d of devices) d.agent.destroy();
  await s.stop();
  return {
    devices: DEVICES,
    intervalSeconds: INTERVAL_S,
    durationSeconds: Math.round(wall),
    attestations: rtts.length,
    attestationsPerSecond: Math.round((rtts.length / wall) * 10) / 10,
    errors,
    roundTripMsP50: pct(rtts, 0.5),
    roundTripMsP99: pct(rtts, 0.99),
    serverCpuCores: Math.round(serverCores * 1000) / 1000,
    serverCpuMsPerAttestation: rtts.length === 0 ? null : Math.round(((serverCores * wall * 1000) / rtts.length) * 100) / 100,
    badQuoteToQuarantineMsP50: pct(toQuarantine, 0.5),
    badQuoteToQuarantineMsP99: pct(toQuarantine, 0.99),
    quarantineConfirmedByRefusal: `${confirmed}/${BAD}`,
  };
}

const result = { quick, cpu: cpu(), fleet: await fleet() };
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
