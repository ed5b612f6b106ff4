import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { UsageError, type GlobalOptions } from '../client.js';
import { emit, fields } from '../output.js';
import { listBundles, provisionMissing } from '../simulate/bundles.js';
import { Fleet } from '../simulate/fleet.js';
import { parseDuration, parseInteger, parseRate } from '../simulate/parse.js';
import { progressReporter, SimStats, summarize, type SimSummary } from '../simulate/stats.js';
import { manufacture } from './manufacture.js';

interface SimulateFlags {
  devices: string;
  bundles?: string;
  manufacture?: boolean;
  enrollment?: string;
  rate: string;
  duration: string;
  concurrency: string;
  keep?: boolean;
}

function human(s: SimSummary): string {
  const problems = Object.entries(s.problems).map(([k, n]) => `\n  ${k} ×${n}`).join('');
  return `${fields([
    ['devices', s.devices],
    ['provisioned', `${s.provisioned} now, ${s.alreadyProvisioned} before`],
    ['connected', `${s.connected} (${s.connectedAtEnd} at the end)`],
    ['messages sent', s.messagesSent],
    ['acknowledged', s.messagesAcknowledged],
    ['msgs/s', s.messagesPerSecond],
    ['connect p50/p99', s.connectMs.p50 === null ? '-' : `${s.connectMs.p50} / ${s.connectMs.p99} ms`],
    ['commands answered', s.commandsAnswered],
    ['refusals', s.refusals],
    ['errors', s.errors],
    ['bundles', s.bundles ?? '(temporary, deleted)'],
  ])}${problems}${s.interrupted ? '\ninterrupted' : ''}`;
}

/**
 * `fleetkey simulate`: a fleet of real device connections in one process, for load and soak
 * tests. Each device runs the SDK's own provision() and connect(), so what is measured is the
 * server a real fleet would meet. The send window (--duration) starts once every device has had
 * its connect attempt; SIGINT ends it early and still closes every connection and prints the summary.
 */
export function simulateCommand(): Command {
  return new Command('simulate')
    .description('simulate N devices: provision, connect, send diagnostics and telemetry, answer commands; prints throughput and latency')
    .requiredOption('--devices <n>', 'number of simulated devices')
    .option('--bundles <dir>', 'bundles written by `fleetkey manufacture` (with --manufacture: where to write them)')
    .option('--manufacture', 'manufacture the devices first (needs a manufacturing or admin token; x509 needs --enrollment)')
    .option('--enrollment <id>', 'x509 group enrollment the manufactured devices belong to')
    .option('--rate <msgs>', 'messages per device per second (0: connect only)', '1')
    .option('--duration <time>', 'how long to send, e.g. 30s, 5m', '30s')
    .option('--concurrency <n>', 'provisioning requests and connect handshakes in flight', '16')
    .option('--keep', 'keep the temporary bundles of --manufacture without --bundles')
    .action(async (o: SimulateFlags, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const count = parseInteger('--devices', o.devices, 1, 100_000);
      const rate = parseRate('--rate', o.rate);
      const durationMs = parseDuration('--duration', o.duration);
      const concurrency = parseInteger('--concurrency', o.concurrency, 1, 256);
      if (o.manufacture !== true && o.bundles === undefined) throw new UsageError('give --bundles <dir>, or --manufacture to make the devices first');
      if (o.manufacture === true && o.enrollment === undefined) throw new UsageError('--manufacture needs --enrollment (an x509 group enrollment)');

      const stats = new SimStats();
      let interrupted = false;
      let wake: () => void = () => undefined;
      const onSigint = (): void => {
        interrupted = true;
        process.stderr.write('fleetkey: interrupted; closing connections (Ctrl-C again to abort)\n');
        process.removeListener('SIGINT', onSigint);
        wake();
      };
      process.on('SIGINT', onSigint);
      const stop = (): boolean => interrupted;

      const temp = o.manufacture === true && o.bundles === undefined ? mkdtempSync(join(tmpdir(), 'fleetkey-simulate-')) : undefined;
      const root = resolve(o.bundles ?? temp ?? '.');
      let phase = 'provisioning';
      const progress = progressReporter(stats, () => phase);
      const ticker = setInterval(() => progress.tick(), 1000);
      let fleet: Fleet | undefined;
      let sendWindowMs = 0;
      try {
        if (o.manufacture === true) {
          phase = 'manufacturing';
          await manufacture({ count: String(count), out: root, enrollment: o.enrollment as string, attestation: 'x509', keystore: 'file', curve: 'P-256', concurrency: String(Math.min(concurrency, 64)) }, g);
        }
        const bundles = listBundles(root, count);
        stats.devices = bundles.length;
        phase = 'provisioning';
        const ready = await provisionMissing(bundles, concurrency, stats, stop);
        phase = 'connecting';
        fleet = new Fleet(ready, stats, { rate, connectConcurrency: concurrency });
        await fleet.connectAll(stop);
        phase = 'sending';
        const sendStart = Date.now();
        fleet.startSending();
        if (!interrupted) await new Promise<void>((r) => {
          const t = setTimeout(r, durationMs);
          wake = () => {
            clearTimeout(t);
            r();
          };
        });
        fleet.stopSending();
        phase = 'draining';
        await fleet.drain(5000);
        sendWindowMs = Date.now() - sendStart;
        const summary = summarize(stats, { sendWindowMs, interrupted, bundles: temp !== undefined && o.keep !== true ? null : root, deviceIdsSample: bundles.slice(0, 10).map((b) => b.deviceId) });
        phase = 'closing';
        await fleet.closeAll();
        fleet = undefined;
        clearInterval(ticker);
        emit(g, summary, () => human(summary));
        if (interrupted) process.exitCode = 130;
      } finally {
        clearInterval(ticker);
        process.removeListener('SIGINT', onSigint);
        await fleet?.closeAll();
        // Temporary bundles hold device keys: gone with the run unless asked to keep them.
        if (temp !== undefined && o.keep !== true) rmSync(temp, { recursive: true, force: true });
      }
    });
}
