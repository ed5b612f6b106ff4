// Setup for bench/gateway: the Fleetkey server child, device provisioning through the real path
// (x509 group enrollment + IDevID + POST /device/v1/provision/x509 over mTLS), and Mosquitto.
import { fork, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect as netConnect, createServer as netServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keyAndCsr } from './csr.mjs';

const here = (f) => fileURLToPath(new URL(f, import.meta.url));

/** Resolves a child's reply; every call is bounded so a wedged child cannot hang the bench. */
export function ipcClient(child, timeoutMs = 120_000) {
  let next = 1;
  const waiting = new Map();
  child.on('message', (m) => {
    const w = waiting.get(m.id);
    if (w === undefined) return;
    waiting.delete(m.id);
    clearTimeout(w.timer);
    if (m.ok) w.resolve(m.value);
    else w.reject(new Error(m.error));
  });
  child.on('exit', (code) => {
    for (const w of waiting.values()) w.reject(new Error(`child exited (${code})`));
    waiting.clear();
  });
  return (op, args = {}, ms = timeoutMs) =>
    new Promise((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`${op} timed out after ${ms} ms`));
      }, ms);
      waiting.set(id, { resolve, reject, timer });
      child.send({ id, op, ...args });
    });
}

export async function startFleetkey(dataDir) {
  const child = fork(here('./server-child.mjs'), [dataDir], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('Fleetkey server did not start in 60 s')), 60_000);
    child.once('exit', (c) => reject(new Error(`Fleetkey server exited (${c})`)));
    child.once('message', (m) => {
      clearTimeout(t);
      if (m.ready) resolve();
    });
  });
  const call = ipcClient(child);
  const info = await call('info');
  return { child, call, info, bundlePem: readFileSync(join(dataDir, 'ca-bundle.pem'), 'utf8') };
}

function mtlsPost(url, body, o) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = request(url, { method: 'POST', ca: o.ca, cert: o.cert, key: o.key, agent: false, timeout: 30_000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, body: text === '' ? null : JSON.parse(text) }));
    });
    req.on('timeout', () => req.destroy(new Error('provisioning request timed out')));
    req.on('error', reject);
    req.end(data);
  });
}

export function operatorApi(info) {
  return async (method, path, body) => {
    const res = await fetch(`${info.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${info.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? null : JSON.parse(text) };
  };
}

/**
 * N devices the way a factory and a first boot make them: registered (manufactured), given an
 * IDevID from our manufacturing CA, then provisioned over mTLS with that IDevID, which issues the
 * operational certificate (CN = device id) from a fresh key and moves the device to provisioned.
 */
export async function provisionDevices(fk, n, concurrency = 8) {
  const api = operatorApi(fk.info);
  const e = await api('POST', '/v1/enrollments', { label: 'bench gateway', kind: 'group', attestation: 'x509', certificateValidity: '2d' });
  if (e.status !== 201) throw new Error(`enrollment: ${e.status} ${JSON.stringify(e.body)}`);
  const out = [];
  let i = 0;
  const worker = async () => {
    while (i < n) {
      i++;
      const d = await api('POST', '/v1/devices', { model: 'bench-robot' });
      if (d.status !== 201) throw new Error(`device: ${d.status} ${JSON.stringify(d.body)}`);
      const idevid = keyAndCsr();
      const c = await api('POST', '/v1/certificates', { deviceId: d.body.id, csr: idevid.csrPem, kind: 'idevid', validity: '2d' });
      if (c.status !== 201) throw new Error(`IDevID: ${c.status} ${JSON.stringify(c.body)}`);
      const op = keyAndCsr();
      const p = await mtlsPost(`${fk.info.deviceUrl}/device/v1/provision/x509`, { csr: op.csrPem }, { ca: fk.bundlePem, cert: c.body.chainPem, key: idevid.keyPem });
      if (p.status !== 200) throw new Error(`provision: ${p.status} ${JSON.stringify(p.body)}`);
      out.push({ id: d.body.id, keyPem: op.keyPem, certPem: p.body.chainPem });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = netServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Mosquitto 2.0 with our CA: mTLS required, the certificate's CN as username, device ACL patterns
 * and one extra user (the counting subscriber) allowed to read every device's telemetry.
 */
export async function startMosquitto(dir, { bundlePem, tls, subscriberId }) {
  const port = await freePort();
  writeFileSync(join(dir, 'ca.pem'), bundlePem);
  writeFileSync(join(dir, 'server.pem'), tls.chainPem);
  writeFileSync(join(dir, 'server.key'), tls.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'acl'), ['pattern write devices/%u/#', 'pattern read devices/%u/commands/#', '', `user ${subscriberId}`, 'topic read devices/+/telemetry', ''].join('\n'));
  writeFileSync(
    join(dir, 'mosquitto.conf'),
    [
      // Files stay root-only (0600 key): run as root rather than dropping to user mosquitto.
      'user root',
      'per_listener_settings false',
      'persistence false',
      'log_dest none',
      `acl_file ${join(dir, 'acl')}`,
      `listener ${port} 127.0.0.1`,
      `cafile ${join(dir, 'ca.pem')}`,
      `certfile ${join(dir, 'server.pem')}`,
      `keyfile ${join(dir, 'server.key')}`,
      'require_certificate true',
      'use_identity_as_username true',
      // The same 64-message window the load generator keeps per publisher.
      'max_inflight_messages 64',
      '',
    ].join('\n'),
  );
  const child = spawn('/usr/sbin/mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  // Its one routine line is the warning about running as root, which we chose; pass the rest on.
  child.stderr.on('data', (b) => {
    const text = b.toString().split('\n').filter((l) => l !== '' && !l.includes('should not be run as root')).join('\n');
    if (text !== '') process.stderr.write(`mosquitto: ${text}\n`);
  });
  await new Promise((resolve, reject) => {
    const deadline = Date.now() + 10_000;
    child.once('exit', (c) => reject(new Error(`mosquitto exited (${c})`)));
    const probe = () => {
      const s = netConnect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => (Date.now() > deadline ? reject(new Error('mosquitto did not listen')) : setTimeout(probe, 50)));
    };
    probe();
  });
  return { child, port, pid: child.pid };
}
