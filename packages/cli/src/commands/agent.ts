import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { readSecretFile, zero } from '@fleetkey/crypto';
import {
  connect,
  ConnectionStoppedError,
  provision,
  ProvisioningGaveUpError,
  ProvisioningRefusedError,
  type ConnectOptions,
  type ProvisionOptions,
  type DeviceConnection,
  type StopInfo,
} from '@fleetkey/device';
import { isFleetkeyError } from '@fleetkey/protocol/base';
import { Command, Option } from 'commander';
import { UsageError, type GlobalOptions } from '../client.js';
import { emit, fields } from '../output.js';
import { startUpdateLoop, summary, UPDATE_CHECK_COMMAND } from './agent-updates.js';

interface ProvisionFlags {
  bundle: string;
  maxAttempts?: string;
  maxTime?: string;
  passphraseFile?: string;
  proof: 'auto' | 'mtls' | 'nonce';
}

function positive(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number`);
  return n;
}

/**
 * `fleetkey agent provision`: the device side, run on the device. Exit codes follow the CLI's:
 * 0 provisioned, 1 refused by the server (definitive; the code is printed), 3 gave up after
 * retrying transient failures, or any local failure.
 */
export function agentCommand(): Command {
  const cmd = new Command('agent').description('device-side operations (run on the device)');
  cmd
    .command('provision')
    .description('first-boot provisioning: new operational key, attestation, operational certificate')
    .requiredOption('--bundle <dir>', 'device bundle written by `fleetkey manufacture`')
    .option('--max-attempts <n>', 'attempts before giving up on transient failures (default 8)')
    .option('--max-time <seconds>', 'stop retrying after this long (default 600)')
    .option('--passphrase-file <file>', 'passphrase for bundle keys sealed with one (mode 0600)')
    .addOption(new Option('--proof <kind>', 'x509 proof of possession').choices(['auto', 'mtls', 'nonce']).default('auto'))
    .action(async (o: ProvisionFlags, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const maxAttempts = positive('--max-attempts', o.maxAttempts);
      const maxTime = positive('--max-time', o.maxTime);
      const options: ProvisionOptions = {
        x509Proof: o.proof,
        retry: { ...(maxAttempts === undefined ? {} : { maxAttempts: Math.floor(maxAttempts) }), ...(maxTime === undefined ? {} : { maxElapsedMs: maxTime * 1000 }) },
        onRetry: ({ attempt, delayMs, error }) => process.stderr.write(`fleetkey: attempt ${attempt} failed (${error.code}: ${error.message}); retrying in ${(delayMs / 1000).toFixed(1)} s\n`),
      };
      const passphrase = o.passphraseFile === undefined ? undefined : await readSecretFile(o.passphraseFile);
      if (passphrase !== undefined) options.passphrase = passphrase.subarray(0, passphrase.length - (passphrase.at(-1) === 0x0a ? 1 : 0));
      try {
        const r = await provision(o.bundle, options);
        const cert = new X509Certificate(r.certificatePem);
        const serial = cert.serialNumber.toLowerCase();
        emit(g, { deviceId: r.deviceId, name: r.name, serial, notAfter: r.notAfter, renewAfter: r.renewAfter, gateway: r.gateway }, () =>
          `provisioned\n${fields([
            ['device', r.deviceId],
            ['name', r.name ?? '(pending)'],
            ['certificate', serial],
            ['not after', r.notAfter],
            ['renew after', r.renewAfter],
            ['mqtt', r.gateway.mqttUrl],
          ])}`,
        );
      } catch (e) {
        if (e instanceof ProvisioningRefusedError) {
          if (g.json === true) process.stdout.write(`${JSON.stringify({ error: { code: e.code, message: e.message, requestId: e.requestId ?? null } }, null, 2)}\n`);
          process.stderr.write(`fleetkey: refused: ${e.code}: ${e.message}${e.requestId === undefined ? '' : ` (request ${e.requestId})`}\n`);
          process.exitCode = 1;
          return;
        }
        if (e instanceof ProvisioningGaveUpError) {
          if (g.json === true) process.stdout.write(`${JSON.stringify({ error: { code: e.code, message: e.message, attempts: e.attempts } }, null, 2)}\n`);
          process.stderr.write(`fleetkey: ${e.code}: ${e.detail ?? e.message} (${(e.elapsedMs / 1000).toFixed(1)} s)\n`);
          process.exitCode = 3;
          return;
        }
        if (isFleetkeyError(e)) {
          // Local failures (bundle permissions, keystore, untrusted server): the detail names the
          // file or check, which the person at the device needs; it never holds key material.
          process.stderr.write(`fleetkey: ${e.code}: ${e.message}${e.detail === undefined ? '' : ` (${e.detail})`}\n`);
          process.exitCode = 3;
          return;
        }
        throw e;
      } finally {
        zero(passphrase);
      }
    });
  cmd.addCommand(runCommand());
  return cmd;
}

interface RunFlags {
  bundle: string;
  ackCommands: boolean;
  protocol: '4' | '5';
  passphraseFile?: string;
  flushTimeout?: string;
  installCommand?: string;
  updateInterval?: string;
  floor: 'auto' | 'file' | 'tpm';
}

const KINDS = ['diagnostics', 'telemetry', 'state'] as const;
type Kind = (typeof KINDS)[number];

/** `diagnostics {json}` / `telemetry {json}` / `state {json}` → the kind and body, or a reason. */
function parseLine(line: string): { kind: Kind; body: unknown } | { problem: string } | undefined {
  const text = line.trim();
  if (text === '' || text.startsWith('#')) return undefined;
  const space = text.search(/\s/);
  const kind = (space < 0 ? text : text.slice(0, space)) as Kind;
  if (!KINDS.includes(kind)) return { problem: `unknown kind "${kind}" (expected ${KINDS.join(', ')})` };
  try {
    return { kind, body: JSON.parse(space < 0 ? '' : text.slice(space + 1)) as unknown };
  } catch {
    return { problem: 'the body is not JSON' };
  }
}

/**
 * `fleetkey agent run`: the device's long-running link. Lines on stdin are sent (buffered on
 * disk while offline); each command received is printed to stdout as one JSON line and, unless
 * --no-ack-commands, answered `{"ok":true}`. EOF flushes and exits 0; a gateway refusal
 * (revoked, bad credentials) exits 1 at once, since retrying cannot help.
 */
/** Device id and gateway from provisioned.json, for the first line `agent run` prints (best effort). */
function provisionedInfo(bundle: string): { deviceId: string | null; mqttUrl: string | null } {
  try {
    const p = JSON.parse(readFileSync(join(bundle, 'provisioned.json'), 'utf8')) as { deviceId?: unknown; gateway?: { mqttUrl?: unknown } };
    return { deviceId: typeof p.deviceId === 'string' ? p.deviceId : null, mqttUrl: typeof p.gateway?.mqttUrl === 'string' ? p.gateway.mqttUrl : null };
  } catch {
    return { deviceId: null, mqttUrl: null };
  }
}

function runCommand(): Command {
  return new Command('run')
    .description('connect to the gateway; send stdin lines ("telemetry {json}"), print commands as JSON lines')
    .requiredOption('--bundle <dir>', 'provisioned device bundle')
    .option('--no-ack-commands', 'print commands without answering them')
    .addOption(new Option('--protocol <version>', 'MQTT protocol version').choices(['4', '5']).default('5'))
    .option('--passphrase-file <file>', 'passphrase for bundle keys sealed with one (mode 0600)')
    .option('--flush-timeout <seconds>', 'on EOF, how long to wait to deliver what is buffered (default 10)')
    .option('--install-command <cmd>', 'check for updates (TUF + director) and run CMD with the verified file path as its last argument')
    .option('--update-interval <seconds>', 'with --install-command: seconds between update checks (default 3600)')
    .addOption(new Option('--floor <where>', 'anti-rollback floor: TPM NV counter when the bundle has a TPM, else sealed file').choices(['auto', 'file', 'tpm']).default('auto'))
    .action(async (o: RunFlags, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const flushMs = (positive('--flush-timeout', o.flushTimeout) ?? 10) * 1000;
      const updateMs = (positive('--update-interval', o.updateInterval) ?? 3600) * 1000;
      if (o.updateInterval !== undefined && o.installCommand === undefined) throw new UsageError('--update-interval needs --install-command');
      // --json: one JSON event per line on stdout; otherwise what it does, in words, on stderr
      // (stdout carries only the commands received, one JSON line each, in both modes).
      const event = (data: Record<string, unknown>, human?: string): void => {
        if (g.json === true) process.stdout.write(`${JSON.stringify(data)}\n`);
        else if (human !== undefined) process.stderr.write(`fleetkey: ${human}\n`);
      };
      const where = provisionedInfo(o.bundle);
      if (g.json !== true) process.stderr.write(`fleetkey: device ${where.deviceId ?? '(not provisioned)'}: connecting to ${where.mqttUrl ?? 'the gateway'}; reading "diagnostics|telemetry|state {json}" lines from stdin\n`);
      const passphrase = o.passphraseFile === undefined ? undefined : await readSecretFile(o.passphraseFile);
      const options: ConnectOptions = { protocolVersion: o.protocol === '4' ? 4 : 5, waitForConnection: false };
      if (passphrase !== undefined) options.passphrase = passphrase.subarray(0, passphrase.length - (passphrase.at(-1) === 0x0a ? 1 : 0));
      // The update loop opens the bundle for each check (renewal may change the certificate): it keeps its own copy.
      const updatePassphrase = options.passphrase === undefined ? undefined : Buffer.from(options.passphrase as Uint8Array);
      let conn: DeviceConnection;
      try {
        conn = await connect(o.bundle, options);
      } catch (e) {
        if (!isFleetkeyError(e)) throw e;
        process.stderr.write(`fleetkey: ${e.code}: ${e.message}${e.detail === undefined ? '' : ` (${e.detail})`}\n`);
        process.exitCode = 3;
        return;
      } finally {
        zero(passphrase);
      }
      const input = createInterface({ input: process.stdin, crlfDelay: Infinity });
      let stopped: StopInfo | undefined;
      conn.on('connected', (e) => event({ event: 'connected', auth: e.auth, serial: e.serial ?? null }, `connected (${e.auth}${e.serial === undefined ? '' : `, certificate ${e.serial}`})`));
      conn.on('disconnected', (e) => process.stderr.write(`fleetkey: disconnected${e.error === undefined ? '' : ` (${e.error})`}; reconnecting\n`));
      conn.on('renewed', (e) => event({ event: 'renewed', ...e }, 'operational certificate renewed'));
      conn.on('warning', (w) => process.stderr.write(`fleetkey: warning: ${w.message}\n`));
      conn.on('stopped', (info) => {
        if (info.reason === 'closed') return;
        stopped = info;
        // Nothing more can be sent: stop reading so the process ends now, not at EOF.
        input.close();
        process.stdin.destroy();
      });
      const updates =
        o.installCommand === undefined
          ? undefined
          : startUpdateLoop(conn, { bundle: o.bundle, installCommand: o.installCommand, intervalMs: updateMs, floor: o.floor, event, ...(updatePassphrase === undefined ? {} : { passphrase: updatePassphrase }) });
      conn.onCommand((command) => {
        process.stdout.write(`${JSON.stringify(command)}\n`);
        if (g.json !== true) process.stderr.write(`fleetkey: command received${o.ackCommands ? ', answered ok' : ''}\n`);
        if (updates !== undefined && command.type === UPDATE_CHECK_COMMAND) {
          // "When told": the result is the outcome of the check it triggered.
          void updates.checkNow().then((out) => conn.sendCommandResult(command.id, summary(out)).catch(() => undefined));
          return undefined;
        }
        return o.ackCommands ? { ok: true } : undefined;
      });
      let sent = 0;
      let n = 0;
      for await (const line of input) {
        n++;
        const parsed = parseLine(line);
        if (parsed === undefined) continue;
        if ('problem' in parsed) {
          process.stderr.write(`fleetkey: line ${n}: ${parsed.problem}\n`);
          continue;
        }
        try {
          const r = parsed.kind === 'diagnostics' ? await conn.sendDiagnostics(parsed.body) : parsed.kind === 'telemetry' ? await conn.sendTelemetry(parsed.body) : await conn.sendState(parsed.body);
          sent++;
          event({ event: 'sent', line: n, kind: parsed.kind, delivered: r.delivered }, `line ${n}: ${parsed.kind} ${r.delivered ? 'delivered (stored by the server)' : 'buffered offline (sent when back online)'}`);
        } catch (e) {
          if (e instanceof ConnectionStoppedError) break;
          process.stderr.write(`fleetkey: line ${n}: ${isFleetkeyError(e) ? `${e.code}: ${e.detail ?? e.message}` : String(e)}\n`);
        }
      }
      if (stopped === undefined && updates !== undefined) {
        // An updating agent outlives its stdin (often /dev/null under a service manager): it runs
        // until it is signalled or the gateway stops it.
        await new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
          conn.once('stopped', () => resolve());
        });
      }
      if (stopped === undefined) {
        // EOF: give an offline device a chance to come back and deliver what it buffered.
        await Promise.race([conn.ready().catch(() => undefined), new Promise((r) => setTimeout(r, flushMs).unref())]);
        const { buffered } = await conn.flush(flushMs);
        event({ event: 'exit', sent, buffered }, `end of input: ${sent} message(s) sent, ${buffered} buffered`);
        if (buffered > 0) process.stderr.write(`fleetkey: ${buffered} message(s) stay buffered in the bundle for the next run\n`);
      }
      await updates?.stop();
      zero(updatePassphrase);
      await conn.close();
      stopped ??= conn.stopped?.reason === 'closed' ? undefined : conn.stopped;
      if (stopped !== undefined) {
        event({ event: 'stopped', reason: stopped.reason, code: stopped.code ?? null });
        process.stderr.write(`fleetkey: stopped by the gateway: ${stopped.reason}${stopped.code === undefined ? '' : ` (0x${stopped.code.toString(16)})`}\n`);
        process.exitCode = 1;
      }
    });
}
