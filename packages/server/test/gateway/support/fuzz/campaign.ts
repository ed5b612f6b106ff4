/**
 * A fuzz campaign against a real gateway over mTLS: the gateway runs in a child process
 * (target.ts); fuzz connections send the sessions of arbitraries.ts, authenticated as fuzz devices
 * or not at all, while one well-behaved device publishes QoS 1 throughout. Reports packets sent,
 * crashes, faults survived, the good device's acknowledgements and the gateway's memory before and
 * after. Used by fuzz-gateway.test.ts and by `npm run fuzz` (bench/fuzz/run.mjs).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { makePki, type Pki } from '../pki.js';
import { FUZZ_DEVICES, sessions, type Session } from './arbitraries.js';

const GOOD = '5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a';
const ROOT = fileURLToPath(new URL('../../../../../../', import.meta.url));
const BATCH = 50;

export interface CampaignOptions {
  packets: number;
  seed: number;
  /** Fuzz connections at once. */
  concurrency?: number;
  log?: (line: string) => void;
}

interface TargetStats {
  rss: number;
  heapUsed: number;
  stats: { connections: number; connecting: number; pendingStores: number; pausedConnections: number };
  accepted: number;
  refusals: number;
  faults: string[];
}

export interface CampaignResult {
  seed: number;
  packetsSent: number;
  sessions: number;
  byMode: Record<string, number>;
  crashes: number;
  crashDetail: string | undefined;
  faults: string[];
  refusals: number;
  good: { sent: number; acked: number; errors: number; disconnects: number };
  servingAfter: boolean;
  rssBefore: number;
  rssAfter: number;
  heapBefore: number;
  heapAfter: number;
  durationMs: number;
}

class Target {
  readonly child: ChildProcess;
  exited = false;
  stderr = '';
  port = 0;
  private waiting: ((s: TargetStats) => void) | undefined;

  constructor(pki: Pki) {
    this.child = fork(fileURLToPath(new URL('./target.ts', import.meta.url)), [], {
      cwd: ROOT,
      execPath: process.execPath,
      // vite-node gives the child the same TypeScript sources and aliases as the tests.
      execArgv: [`${ROOT}node_modules/vite-node/vite-node.mjs`, '--config', `${ROOT}vitest.config.ts`],
      env: { ...process.env, FUZZ_PKI_DIR: pki.dir },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.child.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-8000);
    });
    this.child.on('exit', () => {
      this.exited = true;
    });
    this.child.on('message', (m: { type: string } & TargetStats) => {
      if (m.type === 'stats') this.waiting?.(m);
    });
  }

  async ready(): Promise<void> {
    this.port = await new Promise<number>((resolve, reject) => {
      this.child.on('message', (m: { type: string; port?: number }) => m.type === 'ready' && resolve(m.port as number));
      this.child.once('exit', (code) => reject(new Error(`fuzz target exited (${String(code)}): ${this.stderr}`)));
    });
  }

  async stats(): Promise<TargetStats> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('fuzz target did not answer')), 10_000);
      this.waiting = (s) => {
        clearTimeout(t);
        resolve(s);
      };
      this.child.send({ type: 'stats' });
    });
  }

  stop(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

/** The well-behaved device: QoS 1 PUBLISHes, at most 8 in flight, for as long as the campaign runs. */
class GoodDevice {
  sent = 0;
  acked = 0;
  errors = 0;
  disconnects = 0;
  private running = true;
  private loops: Promise<void>[] = [];

  constructor(private readonly client: MqttClient) {
    client.on('disconnect', () => this.disconnects++);
    client.on('error', () => this.errors++);
    client.on('close', () => this.disconnects++);
  }

  start(): void {
    for (let i = 0; i < 8; i++) this.loops.push(this.loop());
  }

  private async loop(): Promise<void> {
    while (this.running) {
      this.sent++;
      try {
        await this.client.publishAsync(`devices/${GOOD}/telemetry`, JSON.stringify({ n: this.sent }), { qos: 1 });
        this.acked++;
      } catch {
        this.errors++;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Stops sending and waits for the acknowledgements still due (a PUBLISH cut off by a dead gateway never resolves). */
  async stop(): Promise<void> {
    this.running = false;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.loops), new Promise((r) => (timer = setTimeout(r, 10_000)))]);
    clearTimeout(timer);
  }
}

function goodClient(pki: Pki, port: number, version: 4 | 5): Promise<MqttClient> {
  const id = pki.devices.get(GOOD)!;
  return mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, { clientId: GOOD, protocolVersion: version, ca: pki.ca, cert: id.cert, key: id.key, servername: 'localhost', reconnectPeriod: 0, connectTimeout: 10_000, keepalive: 60 }, false);
}

/** Plays one session: writes its bytes (in chunks when asked), half-closes, waits for the close. */
// TLS sessions to resume, per client identity: the fuzz is about MQTT bytes, and a full mTLS
// handshake per connection would make the CPU of handshakes, not packets, the campaign's pace.
const tlsSessions = new Map<number, Buffer>();

/**
 * Plays one session: writes its bytes (in chunks when asked) and half-closes. Resolves once the
 * bytes are written; the socket is left to close on its own (destroyed after 500 ms at most).
 */
async function play(pki: Pki, port: number, s: Session): Promise<void> {
  const identity = s.identity >= 0 ? pki.devices.get(FUZZ_DEVICES[s.identity]!)! : undefined;
  const resume = tlsSessions.get(s.identity);
  const socket = tlsConnect({
    host: '127.0.0.1', port, ca: pki.ca, servername: 'localhost',
    ...(identity === undefined ? {} : { cert: identity.cert, key: identity.key }),
    ...(resume === undefined ? {} : { session: resume }),
  });
  socket.on('session', (t: Buffer) => tlsSessions.set(s.identity, t));
  socket.on('error', () => undefined);
  socket.on('data', () => undefined); // read what the gateway answers, so it never backs up
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('close', () => reject(new Error('closed during handshake')));
    });
  } catch {
    socket.destroy();
    return;
  }
  const bytes = Buffer.concat(s.frames);
  if (s.chunk === 0) socket.write(bytes);
  else for (let i = 0; i < bytes.length; i += s.chunk) socket.write(bytes.subarray(i, i + s.chunk));
  socket.end();
  const t = setTimeout(() => socket.destroy(), 500);
  socket.once('close', () => clearTimeout(t));
}

async function drained(target: Target, connections: number): Promise<TargetStats> {
  const end = Date.now() + 10_000;
  for (;;) {
    const s = await target.stats();
    const st = s.stats;
    if ((st.connections <= connections && st.connecting === 0 && st.pendingStores === 0) || Date.now() > end) return s;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function runCampaign(o: CampaignOptions): Promise<CampaignResult> {
  const log = o.log ?? (() => undefined);
  const concurrency = o.concurrency ?? 12;
  const t0 = Date.now();
  const pki = await makePki([...FUZZ_DEVICES, GOOD]);
  const target = new Target(pki);
  let good: GoodDevice | undefined;
  let client: MqttClient | undefined;
  try {
    await target.ready();
    client = await goodClient(pki, target.port, 5);
    good = new GoodDevice(client);
    good.start();

    let packetsSent = 0;
    let played = 0;
    const byMode: Record<string, number> = {};
    const runBatch = async (batch: number): Promise<void> => {
      const list = sessions(o.seed, batch, BATCH);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < list.length && !target.exited) {
          const s = list[next++]!;
          await play(pki, target.port, s);
          packetsSent += s.frames.length;
          played++;
          byMode[s.mode] = (byMode[s.mode] ?? 0) + s.frames.length;
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
    };

    // Warm-up batch, then the baseline: everything the fuzz opened is closed again.
    await runBatch(-1);
    const before = await drained(target, 1);
    packetsSent = 0;
    played = 0;
    for (const k of Object.keys(byMode)) delete byMode[k];
    log(`seed ${o.seed}: gateway RSS ${mb(before.rss)}, heap ${mb(before.heapUsed)} after warm-up`);

    let batch = 0;
    let lastLog = Date.now();
    while (packetsSent < o.packets && !target.exited) {
      await runBatch(batch++);
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        log(`seed ${o.seed}: ${packetsSent} packets in ${played} connections, good device ${good.acked}/${good.sent} acknowledged`);
      }
    }
    await good.stop();
    const goodCounts = { sent: good.sent, acked: good.acked, errors: good.errors, disconnects: good.disconnects };
    const crashes = target.exited ? 1 : 0;
    let after = before;
    let servingAfter = false;
    if (crashes === 0) {
      after = await drained(target, 1);
      // Still serving: a new device session (v3.1.1 this time) gets its QoS 1 PUBLISH acknowledged.
      await client.endAsync();
      client = await goodClient(pki, target.port, 4);
      await client.publishAsync(`devices/${GOOD}/state`, '{"after":"fuzz"}', { qos: 1 });
      servingAfter = true;
    }
    return {
      seed: o.seed,
      packetsSent,
      sessions: played,
      byMode,
      crashes,
      crashDetail: crashes > 0 ? `batch ${batch - 1}: ${target.stderr}` : undefined,
      faults: after.faults,
      refusals: after.refusals,
      good: goodCounts,
      servingAfter,
      rssBefore: before.rss,
      rssAfter: after.rss,
      heapBefore: before.heapUsed,
      heapAfter: after.heapUsed,
      durationMs: Date.now() - t0,
    };
  } finally {
    // Forced: a graceful end waits for a gateway that may be gone, with nothing left to wake it.
    client?.end(true);
    target.stop();
    await pki.dispose();
  }
}

export const mb = (n: number): string => `${(n / 1048576).toFixed(1)} MB`;

export function summary(r: CampaignResult): string {
  return [
    `seed ${r.seed}: ${r.packetsSent} packets in ${r.sessions} connections (${Object.entries(r.byMode).map(([k, v]) => `${k} ${v}`).join(', ')}) in ${(r.durationMs / 1000).toFixed(1)} s`,
    `crashes ${r.crashes}, faults survived ${r.faults.length}, refusals ${r.refusals}`,
    `good device: ${r.good.acked}/${r.good.sent} QoS 1 acknowledged, ${r.good.errors} errors, ${r.good.disconnects} disconnects; serving after: ${r.servingAfter}`,
    `gateway RSS ${mb(r.rssBefore)} → ${mb(r.rssAfter)}, heap ${mb(r.heapBefore)} → ${mb(r.heapAfter)}`,
    ...(r.crashDetail === undefined ? [] : [`crash: ${r.crashDetail.slice(-1500)}`]),
    ...r.faults.slice(0, 5).map((f) => `fault: ${f.slice(0, 500)}`),
  ].join('\n');
}
