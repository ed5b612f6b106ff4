/**
 * The gateway under fuzz, in its own process (started by campaign.ts through vite-node), so that a
 * crash is a process exit the campaign sees and memory is the gateway's alone. mTLS with the
 * campaign's PKI, client certificates optional (certificate-less connections are refused at
 * CONNECT), the device-gateway's payload check (JSON, size). Answers {type:'stats'} over IPC after
 * a full garbage collection.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createGateway } from '../../../../src/modules/gateway/index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const dir = process.env['FUZZ_PKI_DIR'] as string;
const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
const MAX_PAYLOAD = 4096;

let accepted = 0;
let refusals = 0;
const faults: string[] = [];

const gw = await createGateway({
  listen: { host: '127.0.0.1', port: 0 },
  tls: { key: read('server.key'), cert: read('server.crt'), ca: [read('ca.crt')], requestCert: true, requireCert: false },
  limits: { maxPacketBytes: 16 * 1024, connectTimeoutMs: 2000, sweepIntervalMs: 100 },
  hooks: {
    async authenticate(ctx) {
      const cn = [ctx.peerCertificate?.subject.CN].flat()[0];
      if (cn === undefined) return { ok: false, reason: 'not_authorized', detail: 'no client certificate' };
      return { ok: true, deviceId: cn };
    },
    validate(msg) {
      if (msg.payload.length > MAX_PAYLOAD) return 'too large';
      try {
        JSON.parse(msg.payload.toString('utf8'));
        return null;
      } catch {
        return 'payload is not JSON';
      }
    },
    async accept() {
      accepted++;
    },
    async pendingCommands() {
      return [];
    },
    onRefusal() {
      refusals++;
    },
    onError(err, where) {
      // A fault the gateway survived (the connection got 0x83): still a finding, reported.
      if (faults.length < 50) faults.push(`${where}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    },
  },
});

process.on('message', (m: { type: string }) => {
  if (m.type !== 'stats') return;
  gc();
  gc();
  const mem = process.memoryUsage();
  process.send?.({ type: 'stats', rss: mem.rss, heapUsed: mem.heapUsed, stats: gw.stats(), accepted, refusals, faults });
});
process.on('disconnect', () => void gw.close().then(() => process.exit(0)));
process.send?.({ type: 'ready', port: gw.address().port });
