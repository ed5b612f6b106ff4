import { toPem } from '@fleetkey/crypto';
import { FleetkeyError, type AttestationType, type ProvisioningResult } from '@fleetkey/protocol';
import { createCsr } from '../keystore/create-csr.js';
import type { Keystore, KeyCurve, KeyHandle } from '../keystore/keystore.js';
import { DEFAULT_RETRY_POLICY, withRetries, type RetryHooks, type RetryPolicy } from './backoff.js';
import { loadBundle, writeProvisioned, type LoadedBundle } from './bundle.js';
import { nextOperationalLabel, openBundleKeystore, type BundleKeystoreOptions } from './bundle-keystore.js';
import { DevicePlaneClient } from './device-plane-client.js';
import type { AttestationMethod, PreparedAttestation } from './methods/method.js';
import { SymmetricAttestation } from './methods/symmetric.js';
import { TpmAttestation } from './methods/tpm.js';
import { X509Attestation } from './methods/x509.js';
import { verifyProvisioningResult } from './verify-result.js';

/** The attestation methods by bundle type (one file per method). */
const METHODS: Readonly<Record<AttestationType, AttestationMethod>> = {
  x509: new X509Attestation(),
  symmetric: new SymmetricAttestation(),
  tpm: new TpmAttestation(),
};

export interface ProvisionOptions extends BundleKeystoreOptions, Omit<RetryHooks, 'onAttempt'> {
  /** Curve of the new operational key. Default P-256. */
  curve?: KeyCurve;
  /** Overrides of {@link DEFAULT_RETRY_POLICY}. */
  retry?: Partial<RetryPolicy>;
  /** Called before each attempt (1-based): a device can log or count them. */
  onAttempt?: (attempt: number) => void;
  /** Per HTTP request. Default 30 s. */
  requestTimeoutMs?: number;
  /** x509: 'auto' (mTLS when the IDevID key is a file key, else the signed nonce), or force one. */
  x509Proof?: 'auto' | 'mtls' | 'nonce';
  /** Instead of the bundle's provisioningUrl (same CA trust applies). */
  provisioningUrl?: string;
  /** Clock for token expiries. */
  now?: () => Date;
}

/**
 * First-boot provisioning of the device whose bundle is in `bundleDir`.
 *
 * Generates a NEW operational key in the bundle's keystore (`operational-<n>`; never the IDevID
 * key), builds its CSR, proves the device's identity with the bundle's attestation method and
 * gets the operational certificate back. Transient failures (network, 429, 5xx) are retried with
 * full-jitter exponential backoff; a refusal stops at once. On success writes
 * `operational-chain.pem` and `provisioned.json` (0600) into the bundle; on failure deletes the
 * new key.
 *
 * @throws ProvisioningRefusedError (code PROVISIONING_REFUSED, VALIDATION_FAILED...) on a definitive refusal
 * @throws ProvisioningGaveUpError (code UNAVAILABLE | RATE_LIMITED) when the retry budget is spent
 * @throws FleetkeyError KEY_FILE_PERMISSIONS | CONFIG_INVALID for a bad bundle; UNAVAILABLE when the
 *   server's certificate does not chain to the bundle's CAs (not retried); INTERNAL for a malformed answer
 * @example
 *   const r = await provision('/var/lib/fleetkey/bundle');
 *   console.log(r.deviceId, r.name, r.notAfter);
 */
export async function provision(bundleDir: string, options: ProvisionOptions = {}): Promise<ProvisioningResult> {
  const bundle = await loadBundle(bundleDir);
  const method = METHODS[bundle.device.attestation];
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
  const now = options.now ?? (() => new Date());

  let keystore: Keystore | undefined = await openBundleKeystore(bundle, options);
  let label: string | undefined;
  let prepared: PreparedAttestation | undefined;
  let client: DevicePlaneClient | undefined;
  let ok = false;
  try {
    label = await nextOperationalLabel(keystore, bundle.device.idevidKeyLabel);
    const key: KeyHandle = await keystore.generateKey(label, options.curve ?? 'P-256');
    const csrPem = toPem(await createCsr(key, { commonName: bundle.device.deviceId }), 'CERTIFICATE REQUEST');
    if (method.releasesKeystore) {
      await keystore.close();
      keystore = undefined;
    }
    prepared = await method.prepare({ bundle, keystore: keystore ?? closedKeystore(), now, x509Proof: options.x509Proof ?? 'auto' });
    const c = new DevicePlaneClient(options.provisioningUrl ?? bundle.device.provisioningUrl, { ca: bundle.caBundlePem, ...prepared.tls }, timeoutOption(options));
    client = c;
    const p = prepared;
    const raw = await withRetries((_attempt) => p.attempt(c, csrPem), policy, retryHooks(options));
    const result = verifyProvisioningResult(raw, { deviceId: bundle.device.deviceId, key, trustPem: bundle.caBundlePem });
    await writeProvisioned(bundle, { ...result, operationalKeyLabel: label, provisionedAt: now().toISOString() });
    ok = true;
    return result;
  } finally {
    client?.close();
    prepared?.dispose();
    if (!ok && label !== undefined) await dropKey(bundle, keystore, label, options);
    await keystore?.close();
  }
}

function timeoutOption(o: ProvisionOptions): { timeoutMs?: number } {
  return o.requestTimeoutMs === undefined ? {} : { timeoutMs: o.requestTimeoutMs };
}

function retryHooks(o: ProvisionOptions): RetryHooks {
  const h: RetryHooks = {};
  if (o.random !== undefined) h.random = o.random;
  if (o.onAttempt !== undefined) h.onAttempt = o.onAttempt;
  if (o.onRetry !== undefined) h.onRetry = o.onRetry;
  if (o.signal !== undefined) h.signal = o.signal;
  return h;
}

/** Stands in for a keystore a method asked to have closed: any use of it is a bug. */
function closedKeystore(): Keystore {
  const refuse = (): Promise<never> => Promise.reject(new FleetkeyError('INTERNAL', { detail: 'keystore was released for the TPM' }));
  return { kind: 'pkcs11', generateKey: refuse, getKey: refuse, deleteKey: refuse, close: async () => undefined };
}

/** A key whose certificate never came is useless: remove it rather than leave it in the token. */
async function dropKey(bundle: LoadedBundle, open: Keystore | undefined, label: string, options: BundleKeystoreOptions): Promise<void> {
  let ks = open;
  try {
    ks ??= await openBundleKeystore(bundle, options);
    await ks.deleteKey(label);
  } catch {
    // Best effort: the failure being reported matters more than a stray key.
  } finally {
    if (open === undefined) await ks?.close();
  }
}
