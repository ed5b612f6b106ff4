import { X509Certificate } from 'node:crypto';
import { readSecretFile, zero } from '@fleetkey/crypto';
import { provision, ProvisioningGaveUpError, ProvisioningRefusedError, type ProvisionOptions } from '@fleetkey/device';
import { isFleetkeyError } from '@fleetkey/protocol';
import { Command, Option } from 'commander';
import { UsageError, type GlobalOptions } from '../client.js';
import { emit, fields } from '../output.js';

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
  return cmd;
}
