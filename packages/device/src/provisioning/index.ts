export { provision, type ProvisionOptions } from './provision.js';
export {
  loadBundle,
  writeBundle,
  createBundleDir,
  writeProvisioned,
  readDeviceKey,
  BUNDLE_FILES,
  ProvisionedRecord,
  type LoadedBundle,
  type BundleContents,
} from './bundle.js';
export { openBundleKeystore, openBundleSealer, nextOperationalLabel, type BundleKeystoreOptions } from './bundle-keystore.js';
export { ProvisioningRefusedError, ProvisioningGaveUpError } from './errors.js';
export { DEFAULT_RETRY_POLICY, backoffDelay, withRetries, type RetryPolicy, type RetryHooks } from './backoff.js';
export { DevicePlaneClient, parseRetryAfter, type DevicePlaneTls, type DevicePlaneClientOptions } from './device-plane-client.js';
export { credentialFile, TPM2_TOOLS_CREDENTIAL_MAGIC, TPM2_TOOLS_CREDENTIAL_VERSION } from './tpm-tools.js';
export { verifyProvisioningResult, splitPemCertificates } from './verify-result.js';
export { exportBundleKey, type KeyExportOptions, type ExportedKey } from './key-export.js';
