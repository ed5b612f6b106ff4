// bench/cluster (4): kill -9 of a node holding `devices` connected devices. Three `fleetkey serve`
// processes (one node each, `--workers 1`) on one scratch PostgreSQL database and the bench's
// nats-server; every device is connected to node A and publishes QoS 1 telemetry; node A is killed
// with SIGKILL. Measured from the kill:
//  - until every device is connected again (to B or C: each device's endpoint list, as the SDK's
//    failover does, with the SDK's default full-jitter backoff: before attempt n a delay drawn
//    from [0, min(60 s, 1 s · 2^(n−1))], the first one included, as packages/device does);
//  - until no presence row names node A as connected (takeover by the new node or the reaper);
//  - until node A is marked dead in cluster_nodes;
//  - acknowledged messages lost: PUBACKs the devices received whose row is not in PostgreSQL (the
//    gateway acknowledges a QoS 1 PUBLISH only after its group commit, so this must be 0).
import { join } from 'node:path';
import mqtt from 'mqtt';
import { provisionDevices } from '../gateway/setup.mjs';
import { createPgDb, startServe } from '../gateway/workers.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function failover({ dir, natsUrl, children, devices: N, publishEveryMs, log }) {
  const db = await createPgDb('fk_bench_failover');
  const nodes = [];
  try {
    const dataDir = join(dir, 'data');
    for (const id of ['fo-a', 'fo-b', 'fo-c']) {
      nodes.push({ id, ...(await startServe(dataDir, db.url, ['--workers', '1', '--cluster', natsUrl, '--node-id', id], { children })) });
    }
    const [a, b, c] = nodes;
    log(`failover: nodes ${nodes.map((n) => `${n.id} pid ${n.pid}`).join(', ')}; provisioning ${N} devices…`);
    const t0 = Date.now();
    const devices = await provisionDevices({ info: a.info, bundlePem: a.bundlePem }, N, 8);
    log(`failover: ${N} devices provisioned in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const acked = new Map(); // device id → set of seq acknowledged (PUBACK received)
    const state = devices.map((d, i) => ({ d, i, client: null, seq: 0, connectedAt: 0, on: null, reconnects: 0 }));
    let killedAt = Infinity;
    let firstBackAt = null;
    let failedAttempts = 0;
    const failures = new Map(); // why a reconnect attempt failed → count
    let stopping = false;
    // Bounded by the bench itself too: an attempt that neither resolves nor rejects (seen in the full
    // form under load) must count as failed and move to the next endpoint, not wait forever.
    const open = (st, node) => {
      const client = mqtt.connect(node.info.mqttUrl, { clientId: st.d.id, protocolVersion: 5, key: st.d.keyPem, cert: st.d.certPem, ca: a.bundlePem, reconnectPeriod: 0, connectTimeout: 30_000, keepalive: 30 });
      return new Promise((resolve, reject) => {
        const fail = (e) => {
          clearTimeout(t);
          client.end(true);
          reject(e);
        };
        const t = setTimeout(() => fail(new Error('attempt timeout (35 s)')), 35_000);
        client.once('connect', () => {
          clearTimeout(t);
          resolve(client);
        });
        client.once('error', (e) => fail(e));
        client.once('close', () => fail(new Error('closed before CONNACK')));
      });
    };
    const attach = (st, client, node) => {
      st.client = client;
      st.on = node.id;
      st.connectedAt = Date.now();
      client.on('error', () => {});
      client.once('close', () => {
        if (st.client !== client || stopping) return;
        st.client = null;
        void reconnect(st);
      });
    };
    // The device's endpoint list after A: B then C for even devices, C then B for odd ones.
    const reconnect = async (st) => {
      const order = st.i % 2 === 0 ? [b, c] : [c, b];
      for (let k = 0; !stopping; k++) {
        // Full jitter (packages/device connection/types.ts: base 1 s, cap 60 s): a thousand devices
        // retrying on a flat short delay would be a handshake flood of the bench's own making.
        await sleep(Math.random() * Math.min(60_000, 1000 * 2 ** k));
        const node = order[k % 2];
        try {
          const client = await open(st, node);
          st.reconnects++;
          firstBackAt ??= Date.now();
          attach(st, client, node);
          return;
        } catch (e) {
          failedAttempts++; // next endpoint
          const why = String(e?.message ?? e).slice(0, 80);
          failures.set(why, (failures.get(why) ?? 0) + 1);
        }
      }
    };
    // Connect every device to A, 16 handshakes at a time.
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < state.length) {
          const st = state[next++];
          attach(st, await open(st, a), a);
        }
      }),
    );
    log(`failover: ${N} devices connected to ${a.id}`);
    const presenceOn = async (id) => Number((await db.query('select count(*) as n from device_presence where node_id = $1 and connected = 1', [id]))[0].n);
    log(`failover: presence rows connected on ${a.id}: ${await presenceOn(a.id)}`);

    // Every device publishes one QoS 1 message every publishEveryMs (spread over the period).
    let sent = 0;
    const publisher = setInterval(() => {
      for (const st of state) {
        if (st.client === null || (st.i + sent) % Math.max(1, Math.round(publishEveryMs / 100)) !== 0) continue;
        const seq = ++st.seq;
        st.client
          .publishAsync(`devices/${st.d.id}/telemetry`, JSON.stringify({ seq }), { qos: 1 })
          .then(() => {
            let s = acked.get(st.d.id);
            if (s === undefined) acked.set(st.d.id, (s = new Set()));
            s.add(seq);
          })
          .catch(() => {});
      }
      sent++;
    }, 100);
    await sleep(3000);

    // The kill.
    killedAt = Date.now();
    a.proc.kill('SIGKILL');
    let allBackAt = null;
    let presenceGoneAt = null;
    let deadAt = null;
    const deadline = killedAt + 300_000;
    while (Date.now() < deadline && (allBackAt === null || presenceGoneAt === null || deadAt === null)) {
      if (allBackAt === null && state.every((st) => st.client !== null && st.on !== a.id)) allBackAt = Math.max(...state.map((st) => st.connectedAt));
      if (presenceGoneAt === null && (await presenceOn(a.id)) === 0) presenceGoneAt = Date.now();
      if (deadAt === null && (await db.query("select stopped_at from cluster_nodes where id = $1 and stopped_at is not null", [a.id])).length > 0) deadAt = Date.now();
      await sleep(100);
    }
    const onB = state.filter((st) => st.on === b.id).length;
    const onC = state.filter((st) => st.on === c.id).length;
    // Keep publishing 2 s on the new nodes, then stop and let the last PUBACKs arrive.
    await sleep(2000);
    clearInterval(publisher);
    await sleep(3000);
    stopping = true;
    const ackedTotal = [...acked.values()].reduce((n, s) => n + s.size, 0);
    const rows = await db.query('select device_id, payload from telemetry');
    const stored = new Map();
    for (const r of rows) {
      const seq = Number(/"seq":(\d+)/.exec(r.payload)?.[1]);
      let s = stored.get(r.device_id);
      if (s === undefined) stored.set(r.device_id, (s = new Set()));
      s.add(seq);
    }
    let lost = 0;
    for (const [id, seqs] of acked) for (const q of seqs) if (!stored.get(id)?.has(q)) lost++;
    for (const st of state) st.client?.end(true);
    const secs = (t) => (t === null ? null : (t - killedAt) / 1000);
    return {
      devices: N,
      firstReconnectedS: secs(firstBackAt),
      allReconnectedS: secs(allBackAt),
      failedReconnectAttempts: failedAttempts,
      failedReconnectReasons: Object.fromEntries(failures),
      presenceNoneOnDeadNodeS: secs(presenceGoneAt),
      nodeMarkedDeadS: secs(deadAt),
      reconnectedTo: { [b.id]: onB, [c.id]: onC },
      ackedMessages: ackedTotal,
      storedRows: rows.length,
      ackedLost: lost,
    };
  } finally {
    for (const n of nodes) await n.stop().catch(() => {});
    await db.drop().catch(() => {});
  }
}
