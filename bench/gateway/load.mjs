#!/usr/bin/env node
/**
 * Load test of the gateway engine: QoS 0 and QoS 1 PUBLISH throughput from plain mqtt-packet
 * clients running in a worker thread (so clients and gateway use separate cores), over loopback.
 *
 *   node bench/gateway/load.mjs [--clients 20] [--seconds 5] [--window 64] [--payload 64] [--tls] [--idle 2000]
 *
 * --idle N also opens N idle CONNECTed connections and reports the gateway's memory per
 * connection (heap of the gateway's isolate; RSS counts both sides, so it is an upper bound).
 *
 * GATEWAY_MODULE overrides the engine location (default: the built server package). Every
 * request loop is bounded in time and only 127.0.0.1 is used.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { randomUUID } from 'node:crypto';
import mqttPacket from 'mqtt-packet';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
};

if (isMainThread) await main();
else if (workerData.idle) await idleClients(workerData);
else await clients(workerData);

async function main() {
  const opts = {
    clients: Number(arg('clients', 20)),
    seconds: Number(arg('seconds', 5)),
    window: Number(arg('window', 64)),
    payload: Number(arg('payload', 64)),
    tls: process.argv.includes('--tls'),
    idle: Number(arg('idle', 0)),
  };
  const modulePath =
    process.env.GATEWAY_MODULE ?? fileURLToPath(new URL('../../packages/server/dist/modules/gateway/index.js', import.meta.url));
  const { createGateway } = await import(pathToFileURL(modulePath).href);
  const ids = Array.from({ length: opts.clients }, () => randomUUID());
  let pki;
  if (opts.tls) pki = makePki();
  let stored = 0;
  const gw = await createGateway({
    listen: { host: '127.0.0.1', port: 0 },
    ...(pki ? { tls: { key: pki.serverKey, cert: pki.serverCert, ca: [pki.ca], requestCert: false } } : { insecure: true }),
    limits: { maxPublishesPerSecond: 10_000_000, receiveMaximum: Math.max(64, opts.window), maxPendingStores: 1024 },
    hooks: {
      authenticate: async (ctx) => ({ ok: true, deviceId: ctx.clientId }),
      accept: async () => {
        stored++;
      },
    },
  });
  const port = gw.address().port;
  const results = [];
  try {
    for (const qos of [0, 1]) {
      const before = stored;
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const sent = await runWorker({ port, ids, qos, ...opts, idle: 0, ca: pki?.ca });
      // Count until the gateway has drained what the clients wrote, so runs never overlap.
      let last = -1;
      let lastChange = process.hrtime.bigint();
      while (stored !== last) {
        if (stored !== last) lastChange = process.hrtime.bigint();
        last = stored;
        await new Promise((r) => setTimeout(r, 200));
      }
      const secs = Number(lastChange - t0) / 1e9;
      const cpu = process.cpuUsage(cpu0);
      const n = stored - before;
      results.push({
        qos,
        stored: n,
        sent,
        msgsPerSec: Math.round(n / secs),
        processCpuPct: Math.round(((cpu.user + cpu.system) / 1e6 / secs) * 100),
        rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
      });
    }
    if (opts.idle > 0) results.push(await measureIdle(gw, port, opts.idle, pki?.ca));
  } finally {
    await gw.close();
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
  }
  console.log(JSON.stringify({ transport: opts.tls ? 'tls' : 'tcp', clients: opts.clients, payloadBytes: opts.payload, qos1Window: opts.window, seconds: opts.seconds, results }, null, 2));
}

async function measureIdle(gw, port, n, ca) {
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      global.gc?.();
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await settle();
  const m0 = process.memoryUsage();
  const w = new Worker(fileURLToPath(import.meta.url), { workerData: { idle: n, port, ca, ids: Array.from({ length: n }, () => randomUUID()) } });
  await new Promise((resolve) => w.once('message', resolve));
  const connected = gw.connectionCount();
  await settle();
  const m1 = process.memoryUsage();
  w.postMessage('close');
  await new Promise((resolve) => w.once('exit', resolve));
  return {
    idleConnections: connected,
    gatewayHeapBytesPerConn: Math.round((m1.heapUsed + m1.external - m0.heapUsed - m0.external) / n),
    rssBytesPerConnBothSides: Math.round((m1.rss - m0.rss) / n),
    gcExposed: typeof global.gc === 'function',
  };
}

async function idleClients({ idle, port, ca, ids }) {
  const sockets = [];
  for (let i = 0; i < idle; i += 50) {
    await Promise.all(
      ids.slice(i, i + 50).map(
        (id) =>
          new Promise((resolve) => {
            const socket = ca ? tlsConnect({ host: '127.0.0.1', port, ca }) : netConnect({ host: '127.0.0.1', port });
            sockets.push(socket);
            socket.once('data', () => resolve());
            socket.on('error', () => resolve());
            socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: id, clean: true, keepalive: 600 }));
          }),
      ),
    );
  }
  parentPort.postMessage('ready');
  parentPort.once('message', () => {
    for (const s of sockets) s.destroy();
    parentPort.close();
  });
}

function runWorker(data) {
  return new Promise((resolve, reject) => {
    const w = new Worker(fileURLToPath(import.meta.url), { workerData: data });
    w.once('message', resolve);
    w.once('error', reject);
  });
}

function makePki() {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-bench-'));
  const sh = (args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  sh(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=bench-ca', '-days', '1']);
  writeFileSync(join(dir, 's.ext'), 'subjectAltName=IP:127.0.0.1\n');
  sh(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 's.key', '-out', 's.csr', '-subj', '/CN=bench']);
  sh(['x509', '-req', '-in', 's.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', '7', '-days', '1', '-out', 's.crt', '-extfile', 's.ext']);
  const r = (f) => readFileSync(join(dir, f), 'utf8');
  return { dir, ca: r('ca.crt'), serverKey: r('s.key'), serverCert: r('s.crt') };
}

async function clients({ port, ids, qos, seconds, window, payload, tls, ca }) {
  const deadline = Date.now() + seconds * 1000;
  const body = Buffer.alloc(payload, 0x61);
  let sent = 0;
  await Promise.all(
    ids.map(
      (id) =>
        new Promise((resolve) => {
          const socket = tls ? tlsConnect({ host: '127.0.0.1', port, ca }) : netConnect({ host: '127.0.0.1', port });
          const parser = mqttPacket.parser({ protocolVersion: 4 });
          const topic = `devices/${id}/telemetry`;
          let nextId = 1;
          let inflight = 0;
          let done = false;
          const frame = (messageId) =>
            mqttPacket.generate({ cmd: 'publish', topic, payload: body, qos, dup: false, retain: false, ...(qos ? { messageId } : {}) });
          const q0 = qos === 0 ? frame() : undefined;
          const finish = () => {
            if (done) return;
            done = true;
            socket.end();
            resolve();
          };
          const pump = () => {
            while (Date.now() < deadline) {
              if (qos === 1 && inflight >= window) return;
              let buf;
              if (qos === 0) buf = q0;
              else {
                buf = frame(nextId);
                nextId = nextId === 65535 ? 1 : nextId + 1;
                inflight++;
              }
              sent++;
              if (!socket.write(buf)) return; // wait for 'drain'
            }
            if (qos === 0 || inflight === 0) finish();
          };
          parser.on('packet', (p) => {
            if (p.cmd === 'connack') pump();
            else if (p.cmd === 'puback') {
              inflight--;
              if (Date.now() >= deadline && inflight === 0) finish();
              else if (inflight <= window / 2) pump();
            }
          });
          socket.on('data', (d) => parser.parse(d));
          socket.on('drain', pump);
          socket.on('error', finish);
          socket.on('close', finish);
          socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: id, clean: true, keepalive: 60 }));
          setTimeout(finish, seconds * 1000 + 3000).unref();
        }),
    ),
  );
  parentPort.postMessage(sent);
}
