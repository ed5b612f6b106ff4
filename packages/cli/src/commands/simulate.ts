import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { UsageError, type GlobalOptions } from '../client.js';
import { emit } from '../output.js';
import { parseDuration, parseInteger, parsePerMinute, parseRate } from '../simulate/parse.js';
import { Interrupt, runSimulation } from '../simulate/run.js';
import { human } from '../simulate/summary.js';

interface SimulateFlags {
  devices: string;
  offset: string;
  bundles?: string;
  manufacture?: boolean;
  enrollment?: string;
  rate: string;
  duration: string;
  concurrency: string;
  mqttUrl?: string;
  churn?: string;
  storm?: boolean;
  stormAfter: string;
  stormTimeout: string;
  keep?: boolean;
  installFailRatio?: string;
  updateCheck: string;
}

/**
 * `fleetkey simulate`: a fleet of real device connections in one process, for load and soak
 * tests. Each device runs the SDK's own provision() and connect(), so what is measured is the
 * server a real fleet would meet. The send window (--duration) starts once every device has had
 * its connect attempt; churn runs inside it and a storm starts --storm-after into it (the window
 * lasts at least until the storm is over). SIGINT ends it early and still closes every connection
 * and prints the summary.
 */
export function simulateCommand(): Command {
  return new Command('simulate')
    .description('simulate N devices: provision, connect, send diagnostics and telemetry, answer commands, replace devices, reconnect storms; prints throughput and latency')
    .requiredOption('--devices <n>', 'number of simulated devices')
    .option('--offset <n>', 'skip the first n bundles of --bundles (several processes over one directory)', '0')
    .option('--bundles <dir>', 'bundles written by `fleetkey manufacture` (with --manufacture: where to write them)')
    .option('--manufacture', 'manufacture the devices first (needs a manufacturing or admin token; x509 needs --enrollment)')
    .option('--enrollment <id>', 'x509 group enrollment of manufactured devices (and of churn spares made on demand)')
    .option('--rate <msgs>', 'messages per device per second (0: connect only)', '1')
    .option('--duration <time>', 'how long to send, e.g. 30s, 5m', '30s')
    .option('--concurrency <n>', 'provisioning requests and connect handshakes in flight', '16')
    .option('--mqtt-url <url>', 'connect to this MQTT broker instead of the gateway each device was provisioned with')
    .option('--churn <perMinute>', 'replace this many named devices per minute (name replace --revoke-old) while sending')
    .option('--storm', 'cut every connection at once and measure the reconnect storm')
    .option('--storm-after <time>', 'steady sending before the storm, once every device is connected', '5s')
    .option('--storm-timeout <time>', 'longest the storm is watched before it is reported as timed out', '2m')
    .option('--keep', 'keep the temporary bundles of --manufacture without --bundles')
    .option('--install-fail-ratio <x>', 'run the update flow on every device (SDK updater: director and repository over mTLS, reports over MQTT); installs fail on this share of devices (0..1)')
    .option('--update-check <time>', 'with --install-fail-ratio: how often each device checks for its update', '10s')
    .action(async (o: SimulateFlags, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const count = parseInteger('--devices', o.devices, 1, 100_000);
      const offset = parseInteger('--offset', o.offset, 0, 10_000_000);
      const rate = parseRate('--rate', o.rate);
      const durationMs = parseDuration('--duration', o.duration);
      const concurrency = parseInteger('--concurrency', o.concurrency, 1, 256);
      const churnPerMinute = o.churn === undefined ? 0 : parsePerMinute('--churn', o.churn);
      const storm = o.storm === true ? { afterMs: parseDuration('--storm-after', o.stormAfter), timeoutMs: parseDuration('--storm-timeout', o.stormTimeout) } : undefined;
      if (o.manufacture !== true && o.bundles === undefined) throw new UsageError('give --bundles <dir>, or --manufacture to make the devices first');
      if (o.manufacture === true && o.enrollment === undefined) throw new UsageError('--manufacture needs --enrollment (an x509 group enrollment)');
      if (o.manufacture === true && offset !== 0) throw new UsageError('--offset selects among existing --bundles; it does not apply to --manufacture');
      let updates: { installFailRatio: number; checkIntervalMs: number } | undefined;
      if (o.installFailRatio !== undefined) {
        const ratio = Number(o.installFailRatio);
        if (o.installFailRatio.trim() === '' || !Number.isFinite(ratio) || ratio < 0 || ratio > 1) throw new UsageError('--install-fail-ratio must be a number from 0 to 1');
        updates = { installFailRatio: ratio, checkIntervalMs: parseDuration('--update-check', o.updateCheck) };
      }
      if (o.mqttUrl !== undefined && !/^mqtts:\/\/[^/]+/.test(o.mqttUrl)) throw new UsageError('--mqtt-url must be an mqtts:// URL');

      const intr = new Interrupt();
      const onSigint = (): void => {
        process.stderr.write('fleetkey: interrupted; closing connections (Ctrl-C again to abort)\n');
        process.removeListener('SIGINT', onSigint);
        intr.request();
      };
      process.on('SIGINT', onSigint);
      const temp = o.manufacture === true && o.bundles === undefined ? mkdtempSync(join(tmpdir(), 'fleetkey-simulate-')) : undefined;
      const root = resolve(o.bundles ?? temp ?? '.');
      try {
        const summary = await runSimulation(
          {
            count,
            offset,
            rate,
            durationMs,
            concurrency,
            root,
            manufacture: o.manufacture === true,
            enrollment: o.enrollment,
            keepBundles: temp === undefined || o.keep === true,
            mqttUrl: o.mqttUrl,
            churnPerMinute,
            storm,
            updates,
          },
          g,
          intr,
        );
        emit(g, summary, () => human(summary));
        if (intr.requested) process.exitCode = 130;
      } finally {
        process.removeListener('SIGINT', onSigint);
        // Temporary bundles hold device keys: gone with the run unless asked to keep them.
        if (temp !== undefined && o.keep !== true) rmSync(temp, { recursive: true, force: true });
      }
    });
}
