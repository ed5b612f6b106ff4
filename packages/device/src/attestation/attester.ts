import { readFile } from 'node:fs/promises';
import { Type } from '@sinclair/typebox';
import { FleetkeyError, isFleetkeyError } from '@fleetkey/protocol';
import { zero } from '@fleetkey/crypto';
import { mtlsCredentials, provisionedOf } from '../connection/credentials.js';
import { loadBundle } from '../provisioning/bundle.js';
import { openBundleKeystore, type BundleKeystoreOptions } from '../provisioning/bundle-keystore.js';
import { DevicePlaneClient } from '../provisioning/device-plane-client.js';
import { matches, schemaErrors } from '../provisioning/schema-check.js';
import { openTpmTools } from '../provisioning/tpm-tools.js';
import { quoteWithAk, type TpmQuoteResult } from './tpm-quote.js';

/** The server's answers (packages/protocol/src/api/attestation.ts), checked before use. */
const NonceAnswer = Type.Object({ nonce: Type.String({ pattern: '^[0-9a-f]{64}$' }), expiresAt: Type.String(), pcrs: Type.Array(Type.Integer({ minimum: 0, maximum: 23 })), intervalSeconds: Type.Integer({ minimum: 1 }) });
const VerdictAnswer = Type.Object({ verdict: Type.Union([Type.Literal('trusted'), Type.Literal('failed')]), code: Type.Union([Type.String(), Type.Null()]), quarantined: Type.Boolean(), nextDueAt: Type.String() });

/** Where Linux exposes the TCG event log (TCG PC Client Platform Firmware Profile §10). */
export const DEFAULT_EVENT_LOG_PATH = '/sys/kernel/security/tpm0/binary_bios_measurements';

export interface AttestOptions extends BundleKeystoreOptions {
  /** The event log to send; default the kernel's; null sends none. A missing file sends none. */
  readonly eventLogPath?: string | null;
  readonly timeoutMs?: number;
}

export interface AttestationOutcome {
  readonly verdict: 'trusted' | 'failed';
  readonly code: string | null;
  readonly quarantined: boolean;
  readonly nextDueAt: string;
  readonly intervalSeconds: number;
  /** What was quoted (for logs and tpm2_checkquote), including the nonce. */
  readonly quoted: TpmQuoteResult & { readonly nonce: string };
}

/**
 * One attestation round over the device plane (mTLS with the operational certificate): a nonce
 * and the policy's PCR selection from the server, a TPM quote with the provisioning AK, the
 * event log when the platform exposes one, the verdict back.
 *
 * @throws ProvisioningRefusedError-like FleetkeyError with the server's code on a refusal
 */
export async function attestOnce(bundleDir: string, options: AttestOptions = {}): Promise<AttestationOutcome> {
  const bundle = await loadBundle(bundleDir);
  const tcti = bundle.device.tpmTcti;
  if (tcti === null) throw new FleetkeyError('CONFIG_INVALID', { detail: 'device bundle: attestation needs tpmTcti' });
  const record = provisionedOf(bundle);
  const keystore = await openBundleKeystore(bundle, options);
  let creds;
  try {
    creds = await mtlsCredentials(bundle, keystore, record);
  } finally {
    await keystore.close();
  }
  if (creds.kind !== 'mtls') throw new FleetkeyError('INTERNAL', { detail: 'unreachable' });
  const client = new DevicePlaneClient(record.gateway.deviceUrl, { ca: bundle.caBundlePem, cert: creds.certPem, key: creds.keyPem }, options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs });
  const tools = await openTpmTools(tcti);
  try {
    const n = await client.post('/device/v1/attestation/nonce', {});
    if (!matches(NonceAnswer, n)) throw new FleetkeyError('INTERNAL', { detail: `malformed nonce answer: ${schemaErrors(NonceAnswer, n).join('; ')}` });
    const quoted = await quoteWithAk(tools, bundle.dir, n.pcrs, n.nonce);
    const eventLog = await readEventLog(options.eventLogPath === undefined ? DEFAULT_EVENT_LOG_PATH : options.eventLogPath);
    const v = await client.post('/device/v1/attestation/quote', {
      quote: quoted.quote.toString('base64'),
      signature: quoted.signature.toString('base64'),
      pcrs: quoted.pcrs,
      ...(eventLog === undefined ? {} : { eventLog: eventLog.toString('base64') }),
    });
    if (!matches(VerdictAnswer, v)) throw new FleetkeyError('INTERNAL', { detail: `malformed verdict: ${schemaErrors(VerdictAnswer, v).join('; ')}` });
    return { ...v, intervalSeconds: n.intervalSeconds, quoted: { ...quoted, nonce: n.nonce } };
  } finally {
    zero(creds.keyPem);
    await tools.close();
  }
}

async function readEventLog(path: string | null): Promise<Buffer | undefined> {
  if (path === null) return undefined;
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'EACCES') return undefined;
    throw e;
  }
}

export interface Attester {
  /** Attests now (the server asked, or the device just connected); resolves with the outcome. */
  attestNow(): Promise<AttestationOutcome>;
  stop(): Promise<void>;
}

/**
 * Attests on start (connect), then every interval the server's policy names, and whenever
 * attestNow() is called. A failed round is reported and retried at the next tick: a device that
 * cannot attest goes stale on the server, which is the signal operators need.
 */
export function startAttester(bundleDir: string, options: AttestOptions & { onOutcome?: (o: AttestationOutcome) => void; onError?: (e: unknown) => void; fallbackIntervalMs?: number } = {}): Attester {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let chain: Promise<unknown> = Promise.resolve();
  const round = (): Promise<AttestationOutcome> => {
    const p = chain.then(() => attestOnce(bundleDir, options));
    chain = p.catch(() => undefined);
    return p;
  };
  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(tick, ms);
    timer.unref();
  };
  const tick = () => {
    round()
      .then((o) => {
        options.onOutcome?.(o);
        schedule(o.intervalSeconds * 1000);
      })
      .catch((e: unknown) => {
        options.onError?.(isFleetkeyError(e) ? e : e);
        schedule(options.fallbackIntervalMs ?? 30_000);
      });
  };
  schedule(0);
  return {
    attestNow: round,
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await chain;
    },
  };
}
