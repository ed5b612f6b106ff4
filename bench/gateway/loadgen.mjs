// The one load generator of bench/gateway, used unchanged against Fleetkey and Mosquitto: raw
// mqtt-packet clients over mTLS (a full handshake per connection, no session resumption), in a
// child process of run.mjs. Answers { id, op, ...args } over IPC. Every operation is bounded in
// count and time, uses 127.0.0.1 only, and the process exits with its parent.
import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, createSecureContext } from 'node:tls';
import mqttPacket from 'mqtt-packet';

const creds = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const contexts = new Map();
/** One secure context per device, built once: parsing keys per connection would bill the client. */
const contextOf = (i) => {
  let c = contexts.get(i);
  if (c === undefined) {
    const d = creds.devices[i];
    c = createSecureContext({ key: d.keyPem, cert: d.certPem, ca: creds.caPem });
    contexts.set(i, c);
  }
  return c;
};

const connectPacket = (id, version) => mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clientId: id, clean: true, keepalive: 600 });
const DISCONNECT = mqttPacket.generate({ cmd: 'disconnect' });

/**
 * Opens one mTLS MQTT connection for device i; resolves { socket, parser } once CONNACK accepted,
 * rejects on refusal, error, close or timeout.
 */
function open(port, i, { version = 4, timeoutMs = 15_000 } = {}) {
  return new Promise((resolve, reject) => {
    const d = creds.devices[i];
    // TLS over a TCP socket of our own, so a publisher can be reset (RST) rather than drained.
    const raw = netConnect({ host: '127.0.0.1', port });
    const socket = tlsConnect({ socket: raw, secureContext: contextOf(i), servername: 'localhost' });
    raw.on('error', () => {});
    const parser = mqttPacket.parser({ protocolVersion: version });
    let settled = false;
    const fail = (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error('connect timeout')), timeoutMs);
    parser.on('packet', (p) => {
      if (settled || p.cmd !== 'connack') return;
      const code = p.returnCode ?? p.reasonCode ?? 0;
      if (code !== 0) return fail(new Error(`CONNACK ${code}`));
      settled = true;
      clearTimeout(timer);
      resolve({ socket, parser, raw });
    });
    socket.on('data', (b) => parser.parse(b));
    socket.on('error', (e) => fail(e));
    socket.on('close', () => fail(new Error('closed before CONNACK')));
    socket.once('secureConnect', () => socket.write(connectPacket(d.id, version)));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const ops = {};

/** (1) Connects/s: `concurrency` loops, each handshake → CONNECT → CONNACK → DISCONNECT, until the deadline. */
ops.connects = async ({ port, seconds, concurrency, from, to }) => {
  let next = from;
  let ok = 0;
  let failed = 0;
  const firstError = [];
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const i = next;
        next = next + 1 >= to ? from : next + 1;
        try {
          const { socket } = await open(port, i);
          ok++;
          socket.end(DISCONNECT);
        } catch (e) {
          failed++;
          if (firstError.length === 0) firstError.push(String(e.message));
        }
      }
    }),
  );
  return { connects: ok, failed, seconds: (performance.now() - t0) / 1000, firstError: firstError[0] ?? null };
};

/** (2) Idle connections, opened `concurrency` at a time and kept until idleClose. */
const idle = [];
ops.idleOpen = async ({ port, from, count, concurrency }) => {
  let next = from;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < from + count) {
        const i = next++;
        try {
          const { socket } = await open(port, i);
          socket.on('error', () => {});
          idle.push(socket);
        } catch {
          failed++;
        }
      }
    }),
  );
  return { opened: idle.length, failed, seconds: (performance.now() - t0) / 1000 };
};
ops.idleClose = async () => {
  const n = idle.length;
  for (const s of idle.splice(0)) s.end(DISCONNECT);
  await sleep(500);
  return n;
};

/**
 * (3, 4) PUBLISH throughput from `clients` devices, each paced at most `perClientRate`/s with a
 * burst of at most BURST (below the gateway's per-device limit, as a fleet of real devices would
 * be), QoS 1 with at most `window` unacknowledged per client. The broker's rate is sampled by
 * run.mjs inside [startedAt, sentAt]; QoS 0 publishers are then reset (RST) so a backlog still in
 * the kernel's buffers is discarded instead of draining into the next measurement.
 */
const BURST = 50;
ops.publish = async ({ port, from, clients, qos, seconds, window, perClientRate, payloadBytes }) => {
  const conns = await Promise.all(Array.from({ length: clients }, (_, k) => open(port, from + k)));
  const body = Buffer.from(JSON.stringify({ t: 21.5, pad: 'x'.repeat(Math.max(0, payloadBytes - 20)) }));
  let sent = 0;
  let acked = 0;
  const state = conns.map(({ socket, parser, raw }, k) => {
    const s = { socket, raw, tokens: 0, inflight: 0, nextId: 1, blocked: false, topic: `devices/${creds.devices[from + k].id}/telemetry` };
    s.q0 = mqttPacket.generate({ cmd: 'publish', topic: s.topic, payload: body, qos: 0, dup: false, retain: false });
    parser.on('packet', (p) => {
      if (p.cmd === 'puback') {
        s.inflight--;
        acked++;
      }
    });
    socket.on('drain', () => (s.blocked = false));
    socket.on('error', () => {});
    return s;
  });
  const startedAt = Date.now();
  const deadline = performance.now() + seconds * 1000;
  let last = performance.now();
  // One pacing tick for all clients; tokens never pile up past BURST, so a client that was held
  // back (TCP backpressure) does not catch up in a burst.
  while (performance.now() < deadline) {
    const now = performance.now();
    const add = ((now - last) / 1000) * perClientRate;
    last = now;
    for (const s of state) {
      s.tokens = Math.min(BURST, s.tokens + add);
      while (!s.blocked && s.tokens >= 1 && (qos === 0 || s.inflight < window) && !s.socket.destroyed) {
        let buf = s.q0;
        if (qos === 1) {
          buf = mqttPacket.generate({ cmd: 'publish', topic: s.topic, payload: body, qos: 1, messageId: s.nextId, dup: false, retain: false });
          s.nextId = s.nextId === 65535 ? 1 : s.nextId + 1;
          s.inflight++;
        }
        s.tokens--;
        sent++;
        if (!s.socket.write(buf)) s.blocked = true;
      }
    }
    await sleep(5);
  }
  const sentAt = Date.now();
  const ackedAtDeadline = acked;
  // QoS 1: wait (bounded) for the last acknowledgements.
  const ackDeadline = performance.now() + 10_000;
  while (qos === 1 && state.some((s) => s.inflight > 0 && !s.socket.destroyed) && performance.now() < ackDeadline) await sleep(5);
  const endedAt = Date.now();
  const dropped = state.filter((s) => s.socket.destroyed).length;
  for (const s of state) {
    if (qos === 0) s.raw.resetAndDestroy();
    else s.socket.end(DISCONNECT);
  }
  return { sent, acked, ackedAtDeadline, startedAt, sentAt, endedAt, droppedConnections: dropped };
};

/** The counting subscriber (Mosquitto): devices/+/telemetry at QoS 0, counting deliveries. */
let sub;
ops.subscribe = async ({ port, index }) => {
  const { socket, parser } = await open(port, index);
  sub = { socket, count: 0, lastAt: Date.now() };
  const subscribed = new Promise((resolve, reject) => {
    parser.on('packet', (p) => {
      if (p.cmd === 'publish') {
        sub.count++;
        sub.lastAt = Date.now();
      } else if (p.cmd === 'suback') (p.granted[0] === 0x80 ? reject(new Error('SUBACK refused')) : resolve());
    });
  });
  socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'devices/+/telemetry', qos: 0 }] }));
  await subscribed;
  return true;
};
ops.subCount = async () => ({ count: sub.count, lastAt: sub.lastAt });

/**
 * (5) Revoke → disconnect: `connected` devices on MQTT 5, then `revokes` of them revoked one at a
 * time through the operator API; latency = from just before the request to the client seeing
 * DISCONNECT or the socket closing, on this process's clock.
 */
ops.revoke = async ({ port, from, connected, revokes, url, adminToken }) => {
  const conns = [];
  for (let k = 0; k < connected; k += 50) {
    conns.push(...(await Promise.all(Array.from({ length: Math.min(50, connected - k) }, (_, j) => open(port, from + k + j, { version: 5 })))));
  }
  const latencies = [];
  const reasons = {};
  let httpMs = 0;
  for (let k = 0; k < revokes; k++) {
    const { socket, parser } = conns[k];
    const cut = new Promise((resolve) => {
      const done = (how) => resolve({ at: performance.now(), how });
      parser.on('packet', (p) => p.cmd === 'disconnect' && done(`DISCONNECT 0x${(p.reasonCode ?? 0).toString(16)}`));
      socket.on('close', () => done('close'));
      socket.on('error', () => {});
      setTimeout(() => done('timeout'), 5000);
    });
    const t0 = performance.now();
    const res = await fetch(`${url}/v1/devices/${creds.devices[from + k].id}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'bench' }),
      signal: AbortSignal.timeout(10_000),
    });
    await res.text();
    httpMs += performance.now() - t0;
    if (res.status !== 200) throw new Error(`revoke ${res.status}`);
    const { at, how } = await cut;
    reasons[how] = (reasons[how] ?? 0) + 1;
    if (how !== 'timeout') latencies.push(at - t0);
  }
  const stillConnected = conns.slice(revokes).filter((c) => !c.socket.destroyed).length;
  for (const c of conns) c.socket.end(DISCONNECT);
  return { latencies, reasons, stillConnected, httpMeanMs: httpMs / revokes };
};

process.on('message', async ({ id, op, ...args }) => {
  try {
    process.send({ id, ok: true, value: await ops[op](args) });
  } catch (e) {
    process.send({ id, ok: false, error: String(e?.stack ?? e) });
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ ready: true });
